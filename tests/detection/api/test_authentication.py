from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from detection.api.authentication import user_by_token

pytestmark = pytest.mark.django_db


def test_it_finds_the_user_a_token_belongs_to_with_typed_fields():
    users = [get_user_model().objects.create_user(f"user{i}") for i in range(3)]
    keys = [Token.objects.create(user=user).key for user in users]
    users[1].is_staff = True
    users[1].save()
    with CaptureQueriesContext(connection) as queries:
        found = user_by_token(keys[1])
        assert found == users[1]
        assert found.username == "user1"
        # What permission checks read, converted as the ORM would: real bools.
        assert found.is_active is True
        assert found.is_staff is True
        assert found.is_superuser is False
    assert len(queries) == 1
    # The rest of the record loads when asked for, an aware datetime, not text.
    assert isinstance(found.date_joined, datetime)
    assert found.date_joined.tzinfo is not None


def test_it_finds_nobody_for_an_unknown_key():
    Token.objects.create(user=get_user_model().objects.create_user("someone"))
    assert user_by_token("0" * 40) is None
