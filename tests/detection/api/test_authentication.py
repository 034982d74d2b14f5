from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from detection.api.authentication import user_by_token

pytestmark = pytest.mark.django_db


def test_it_finds_the_user_a_token_belongs_to_with_typed_fields():
    users = [get_user_model().objects.create_user(f"user{i}") for i in range(3)]
    keys = [Token.objects.create(user=user).key for user in users]
    found = user_by_token(keys[1])
    assert found == users[1]
    assert found.username == "user1"
    # Converted as the ORM would: a real bool and an aware datetime, not 1 and text.
    assert found.is_active is True
    assert isinstance(found.date_joined, datetime)
    assert found.date_joined.tzinfo is not None


def test_it_finds_nobody_for_an_unknown_key():
    Token.objects.create(user=get_user_model().objects.create_user("someone"))
    assert user_by_token("0" * 40) is None
