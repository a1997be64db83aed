"""Which PostgreSQL and RabbitMQ the suite runs against (tests/infra.choose_backend)."""

import pytest

from tests.infra import choose_backend


def choose(env=None, *, answers=False, installed=False, docker=False):
    return choose_backend(env or {}, local_answers=answers, local_installed=installed, docker_usable=docker)


@pytest.mark.parametrize("env", [{"DATABASE_URL": "postgresql://db.example:5432/postgres"},
                                 {"RABBITMQ_URL": "amqp://guest:guest@mq.example/"},
                                 {"DATABASE_URL": "postgresql://db/x", "RABBITMQ_URL": "amqp://mq/"}])
def test_a_given_url_wins_over_local_servers_and_docker(env):
    assert choose(env, answers=True, installed=True, docker=True) == "given"
    assert choose(env) == "given"


def test_local_servers_that_answer_or_can_be_started_are_the_default():
    assert choose(answers=True, installed=True, docker=True) == "local"
    assert choose(answers=True, docker=True) == "local"
    assert choose(installed=True, docker=True) == "local"  # devservices starts them
    assert choose(answers=True) == "local"


def test_containers_only_when_nothing_local_and_docker_answers():
    assert choose(docker=True) == "containers"
    assert choose({"DATABASE_URL": "", "RABBITMQ_URL": ""}, docker=True) == "containers"  # empty is unset


def test_with_nothing_at_all_the_local_path_reports_what_is_missing():
    assert choose() == "local"


def test_the_choice_can_be_forced():
    assert choose({"GIVANCE_TEST_BACKEND": "containers"}, answers=True, installed=True) == "containers"
    assert choose({"GIVANCE_TEST_BACKEND": "Local"}, docker=True) == "local"
    with pytest.raises(ValueError, match="GIVANCE_TEST_BACKEND"):
        choose({"GIVANCE_TEST_BACKEND": "kubernetes"})
