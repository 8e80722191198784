"""The integration suite's stack: every service in this process, one converter."""

import pytest

from runlocal.throwaway import running_stack
from tests.servers import ADMIN, Client, stack_environment

TOKEN_CACHE_SECONDS = 2


@pytest.fixture(scope="session")
def stack_env(servers, tmp_path_factory):
    # The converter's cleanup sweeps every second, so that retention can be watched at work; the gateway
    # takes a token on trust for 2 s, so that revocations can be watched taking effect.
    return stack_environment(servers, tmp_path_factory, "it", MAX_UPLOAD_MB="8", CLEANUP_INTERVAL_SECONDS="1",
                             TOKEN_CACHE_SECONDS=str(TOKEN_CACHE_SECONDS))


@pytest.fixture(scope="session")
def stack(stack_env):
    with running_stack(stack_env) as running:
        yield running


@pytest.fixture(scope="session")
def admin(stack) -> Client:
    client = Client(stack.gateway_url)
    assert client.login(*ADMIN).status_code == 200
    return client
