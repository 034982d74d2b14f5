"""Token authentication with the token lookup as one hand-written query.

DRF's ``TokenAuthentication`` builds ``Token.objects.select_related("user")``
with the ORM on every request; compiling it cost more than the rest of a
single-transaction request's database work. Same tokens, same answers, same
checks: an unknown key or an inactive user is refused.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from detection import sql


@sql.statement
def _token_user_sql() -> str:
    user_model = get_user_model()
    columns = ", ".join(sql.quote("u", field.column) for field in user_model._meta.concrete_fields)
    return (
        f"SELECT {columns} FROM {sql.quote(user_model._meta.db_table)} u "
        f"JOIN {sql.quote(Token._meta.db_table)} t "
        f"ON {sql.quote('t', Token._meta.get_field('user').column)} = "
        f"{sql.quote('u', user_model._meta.pk.column)} "
        f"WHERE {sql.quote('t', 'key')} = %s"
    )


def user_by_token(key: str) -> AbstractBaseUser | None:
    """The user whose API token is ``key``, or None."""
    # raw() converts each column as the ORM would (booleans and datetimes on
    # SQLite), without compiling a query.
    return next(iter(get_user_model().objects.raw(_token_user_sql(), [key])), None)


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Token]:
        user = user_by_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)
