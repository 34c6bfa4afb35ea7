"""The server's settings: limits, grace, body size, persistence; bad values name the variable."""

import pytest

from conv3n.errors import InvalidInput
from conv3n.runtime import Settings


def test_defaults_are_the_documented_ones():
    settings = Settings.from_env({})
    assert settings.max_concurrency == 100
    assert settings.max_queued == 1000
    assert settings.shutdown_grace_seconds == 10
    assert settings.max_request_bytes == 10 * 1024 * 1024
    assert settings.persist is True
    assert settings.log_format is None
    assert settings.log_level == "info"
    assert settings.processes == 1


def test_values_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "CONV3N_MAX_CONCURRENCY": "3",
            "CONV3N_MAX_QUEUED": "0",
            "CONV3N_SHUTDOWN_GRACE_SECONDS": "2.5",
            "CONV3N_MAX_REQUEST_BYTES": "1024",
            "CONV3N_PERSIST": "OFF",
            "CONV3N_PROCESSES": "4",
        }
    )
    assert settings.processes == 4
    assert (settings.max_concurrency, settings.max_queued) == (3, 0)
    assert settings.shutdown_grace_seconds == 2.5
    assert settings.max_request_bytes == 1024
    assert settings.persist is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONV3N_MAX_CONCURRENCY", "0"),
        ("CONV3N_MAX_CONCURRENCY", "many"),
        ("CONV3N_MAX_QUEUED", "-1"),
        ("CONV3N_SHUTDOWN_GRACE_SECONDS", "soon"),
        ("CONV3N_MAX_REQUEST_BYTES", "1e9"),
        ("CONV3N_PERSIST", "maybe"),
        ("CONV3N_PROCESSES", "0"),
        ("CONV3N_PROCESSES", "65"),
        ("CONV3N_PROCESSES", "two"),
        ("CONV3N_PORT", "65536"),
    ],
)
def test_a_bad_value_names_its_variable(name, value):
    with pytest.raises(InvalidInput, match=name):
        Settings.from_env({name: value})


def test_the_cli_bounds_of_processes_are_the_settings_ones():
    import inspect

    from conv3n.cli.serve import serve
    from conv3n.runtime.settings import MAX_PROCESSES

    option = inspect.signature(serve).parameters["processes"].default
    assert (option.min, option.max) == (1, MAX_PROCESSES)
