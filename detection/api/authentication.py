"""Token authentication with the token lookup as one hand-written query.

DRF's ``TokenAuthentication`` builds ``Token.objects.select_related("user")``
with the ORM on every request; compiling it cost more than the rest of a
single-transaction request's database work. Same tokens, same answers, same
checks: an unknown key or an inactive user is refused.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from detection import sql

# What an API request reads of its user: the key (throttling, the request
# log) and the flags the permission checks look at. The other fields stay
# deferred and load on first use, like a ``.only()`` queryset's: building
# the whole record through ``raw()`` was a tenth of a single-transaction
# request.
_FLAGS = frozenset({"is_active", "is_staff", "is_superuser"})
_LOADED = _FLAGS | {"id", "username"}


@cache
def _loaded_fields() -> list[str]:
    # In the model's field order, which Model.from_db expects the values in.
    return [f.attname for f in get_user_model()._meta.concrete_fields if f.attname in _LOADED]


@sql.statement
def _token_user_sql() -> str:
    user_model = get_user_model()
    columns = ", ".join(
        sql.quote("u", user_model._meta.get_field(name).column) for name in _loaded_fields()
    )
    return (
        f"SELECT {columns} FROM {sql.quote(user_model._meta.db_table)} u "
        f"JOIN {sql.quote(Token._meta.db_table)} t "
        f"ON {sql.quote('t', Token._meta.get_field('user').column)} = "
        f"{sql.quote('u', user_model._meta.pk.column)} "
        f"WHERE {sql.quote('t', 'key')} = %s"
    )


def user_by_token(key: str) -> AbstractBaseUser | None:
    """The user whose API token is ``key``, or None."""
    rows = sql.fetch(_token_user_sql(), [key])
    if not rows:
        return None
    names = _loaded_fields()
    # SQLite gives booleans back as 0 and 1; the ORM would convert them.
    values = [
        bool(value) if name in _FLAGS else value for name, value in zip(names, rows[0], strict=True)
    ]
    return get_user_model().from_db(connection.alias, names, values)


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Token]:
        user = user_by_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)
