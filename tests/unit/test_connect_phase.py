"""Reading a ``dagger call``'s output for "never reached its engine" (v0.21, plain progress)."""

from __future__ import annotations

from pocketci_tui.engine.dagger.connect_phase import ConnectWatch

REFUSED = (
    '! connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.5:1234: '
    'connect: connection refused"'
)

ATTEMPT = [
    "1   : connect",
    "2   : ┆ starting engine",
    "3   : ┆ ┆ moby.buildkit.v1.Control/Info",
    "3   : ┆ ┆ moby.buildkit.v1.Control/Info ERROR [0.0s]",
    f"3   : ┆ ┆ {REFUSED}",
]

GAVE_UP = [
    "1   : connect ERROR [10m0s]",
    "1   : ! start engine: new client: context deadline exceeded",
    "",
    "Error: start engine: new client: context deadline exceeded",
]


def watch(lines: list[str]) -> ConnectWatch:
    w = ConnectWatch()
    w.feed(lines)
    return w


def test_failed_attempts_while_connecting_mean_unreachable() -> None:
    w = watch(ATTEMPT + ATTEMPT[2:])
    assert w.connecting
    assert w.failures == 2
    assert w.unreachable
    assert w.last_error == (
        "transport: Error while dialing: dial tcp 10.0.0.5:1234: connect: connection refused"
    )


def test_the_cli_giving_up_means_unreachable() -> None:
    w = watch(ATTEMPT + GAVE_UP)
    assert w.gave_up
    assert w.unreachable
    assert "connect: connection refused" in w.last_error
    alone = watch(GAVE_UP)
    assert alone.unreachable
    assert alone.last_error == "start engine: new client: context deadline exceeded"


def test_a_kube_pod_helper_failure_is_unquoted() -> None:
    line = (
        '5   : ┆ ┆ ┆ ! connection error: desc = "error reading server preface: command '
        "[kubectl --context= --namespace=dagger exec --container= -i engine-0 -- buildctl "
        "dial-stdio] has exited with exit status 1, make sure the URL is valid, and Docker "
        "18.09 or later is installed on the remote host: stderr=Error from server (NotFound): "
        'pods \\"engine-0\\" not found\\n"'
    )
    w = watch([line])
    assert w.unreachable
    assert w.last_error == (
        "error reading server preface: command [kubectl --context= --namespace=dagger exec "
        "--container= -i engine-0 -- buildctl dial-stdio] has exited with exit status 1: "
        'stderr=Error from server (NotFound): pods "engine-0" not found'
    )


def test_a_retry_that_connects_is_past_the_connect_phase() -> None:
    """The CLI retries: once ``connect`` is done, later failures are the build's."""
    w = watch([*ATTEMPT, "1   : connect DONE [3.1s]", "9   : ┆ " + REFUSED, *GAVE_UP[2:]])
    assert not w.connecting
    assert w.failures == 1
    assert not w.unreachable


def test_the_functions_output_means_it_ran() -> None:
    """A build whose own output says "connection refused" failed; it did not fail to start."""
    w = watch(
        [
            "dial tcp 127.0.0.1:5432: connect: connection refused",
            "3   : ┆ ┆ " + REFUSED,
            "Error: start engine: new client: context deadline exceeded",
        ]
    )
    assert not w.connecting
    assert not w.unreachable
    assert w.failures == 0


def test_a_failure_without_connect_errors_is_a_build_failure() -> None:
    w = watch(
        [
            "1   : connect",
            "Error: rpc error: code = Unavailable desc = error reading from server: EOF",
        ]
    )
    assert not w.unreachable


def test_any_other_top_level_step_means_it_got_past_connecting() -> None:
    """Nested steps belong to connecting; a top-level step that is not ``connect`` (the
    module loading, the function) means the CLI reached its engine."""
    nested = watch(["1   : connect", "2   : ┆ pulling engine image", "3   : ┆ ┆ " + REFUSED])
    assert nested.unreachable
    w = watch(["1   : connect", "7   : load module: ./ci", "8   : ┆ " + REFUSED])
    assert not w.connecting
    assert not w.unreachable
    logs = watch(["1   : connect", "1   : [0.0s] | cloud url=https://dagger.cloud/traces/setup"])
    assert logs.connecting
