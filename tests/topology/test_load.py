"""Reading files: YAML syntax, unknown keys, types and values, env expansion, secrets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tradeops.topology.load import TopologyError, load, load_topology
from tradeops.topology.validate import validate_file

GOOD = """
version: 1
name: desk
brokers:
  sim:
    adapter: sim
strategies:
  alpha:
    class: recipes.momentum:Momentum
    broker: sim
    symbols: [AAPL]
"""


def test_a_sound_file_loads_with_defaults(write_yaml: Callable[..., Path]) -> None:
    topo = load_topology(write_yaml(GOOD))
    assert topo.settings.stale_after == 30.0
    assert topo.settings.proxy.listen == "127.0.0.1:8765"
    assert topo.brokers["sim"].pool.capacity == 3000
    assert topo.brokers["sim"].effective_feed == "iex"
    assert topo.strategies["alpha"].mode == "trade"
    assert topo.strategies["alpha"].class_ == "recipes.momentum:Momentum"


def test_yaml_syntax_error_has_its_position(write_yaml: Callable[..., Path]) -> None:
    path = write_yaml("version: 1\nname: desk\nbrokers:\n  sim: {adapter: sim\n  x: 1\n")
    (finding,) = validate_file(path).findings
    assert finding.code == "yaml-syntax"
    assert finding.line == 4  # where the '{' is left open, not where the parser noticed
    assert "not closed by '}'" in finding.message
    assert finding.file == str(path)


@pytest.mark.parametrize(
    ("text", "line", "says", "fix"),
    [
        # A tab in the indentation (libyaml: "found character that cannot start any token").
        ("version: 1\nbrokers:\n\tsim: {adapter: sim}\n", 3, "a tab character", "spaces"),
        # A key without ':' is seen on the next line ("could not find expected ':'").
        ("version: 1\nbrokers\nstrategies: {}\n", 2, "no ':' after it", "key: value"),
        # ... or as a ':' that is "not allowed here" on the next line.
        ("version: 1\nbrokers:\n  sim\n  alpaca: {}\n", 3, "no ':' after it", "key:"),
        # A value holding ': ' ("mapping values are not allowed here").
        ("version: 1\nname: a: b\n", 2, "second ':'", "quote the value"),
        # A key indented off its mapping ("did not find expected key").
        ("brokers:\n  sim:\n    adapter: sim\n   market: {}\n", 4, "not indented like", "column"),
        # A list item without its '- ' ("did not find expected '-' indicator").
        ("strategies:\n  - a\n  b: 1\n", 3, "does not start with '- '", "'- '"),
        # An unclosed quote is reported where it opens ("found unexpected end of stream").
        ('version: 1\nname: "desk\nbrokers: {}\n', 2, "quote opened here", "close"),
    ],
)
def test_yaml_errors_in_plain_words_on_the_right_line(
    write_yaml: Callable[..., Path], text: str, line: int, says: str, fix: str
) -> None:
    (finding,) = validate_file(write_yaml(text)).findings
    assert finding.code == "yaml-syntax"
    assert finding.line == line, finding
    assert says in finding.message and fix in finding.fix, finding
    for jargon in ("token", "simple key", "block", "mapping values", "expected"):
        assert jargon not in finding.message


def test_unknown_key_suggests_the_closest(write_yaml: Callable[..., Path]) -> None:
    path = write_yaml(GOOD + "    prority: high\n")
    (finding,) = validate_file(path).findings
    assert finding.code == "unknown-key"
    assert (finding.line, finding.column) == (11, 5)
    assert finding.name == "prority"
    assert "did you mean 'priority'?" in finding.fix


def test_wrong_value_lists_the_choices(write_yaml: Callable[..., Path]) -> None:
    path = write_yaml(GOOD + "    mode: quotes\n")
    (finding,) = validate_file(path).findings
    assert finding.code == "invalid-value"
    assert finding.line == 11
    assert finding.path == ("strategies", "alpha", "mode")
    assert "trade, quote, depth" in finding.fix and "'quote'" in finding.fix


def test_wrong_type_is_reported(write_yaml: Callable[..., Path]) -> None:
    path = write_yaml(GOOD.replace("symbols: [AAPL]", "symbols: AAPL"))
    (finding,) = validate_file(path).findings
    assert finding.path == ("strategies", "alpha", "symbols")
    assert "list" in finding.message


def test_missing_required_key(write_yaml: Callable[..., Path]) -> None:
    path = write_yaml(GOOD.replace("    broker: sim\n", ""))
    (finding,) = validate_file(path).findings
    assert finding.code == "missing-key"
    assert finding.name == "broker"
    assert finding.line == 7  # the strategy that lacks it


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), (2, 2.0)]
)
def test_durations(write_yaml: Callable[..., Path], text: object, seconds: float) -> None:
    topo = load_topology(write_yaml(GOOD + f"    timer: {text}\n"))
    assert topo.strategies["alpha"].timer == seconds


def test_bad_duration_says_how_to_write_one(write_yaml: Callable[..., Path]) -> None:
    (finding,) = validate_file(write_yaml(GOOD + "    timer: 5 secs\n")).findings
    assert "500ms, 30s, 5m" in finding.message


def test_rate_limit_parses(write_yaml: Callable[..., Path]) -> None:
    text = GOOD.replace("adapter: sim", "adapter: sim\n    orders: {rate_limit: 100/min}")
    topo = load_topology(write_yaml(text))
    rate = topo.brokers["sim"].orders.rate_limit
    assert rate is not None and (rate.requests, rate.seconds) == (100, 60.0)


def test_duplicate_names_are_errors(write_yaml: Callable[..., Path]) -> None:
    text = (
        GOOD + "  alpha:\n    class: recipes.momentum:Momentum\n    broker: sim\n    symbols: [X]\n"
    )
    findings = validate_file(write_yaml(text)).findings
    dup = [f for f in findings if f.code == "duplicate-key"]
    assert len(dup) == 1 and dup[0].name == "alpha" and dup[0].line == 11
    assert "first on line 7" in dup[0].message


PAPER = """
version: 1
name: desk
brokers:
  paper:
    adapter: alpaca
    credentials: {key: "${APCA_KEY}", secret: "${APCA_SECRET}"}
    url: "${APCA_URL:-wss://example.test/v2/iex}"
"""


def test_env_expansion_from_environment_and_dotenv(
    write_yaml: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("APCA_KEY=from-dotenv\nAPCA_SECRET=s3cret-dotenv\n")
    loaded = load(write_yaml(PAPER), environ={"APCA_KEY": "from-env"})
    assert loaded.findings == []
    assert loaded.topology is not None
    paper = loaded.topology.brokers["paper"]
    assert paper.credentials is not None
    assert paper.credentials.key.get_secret_value() == "from-env"  # environment beats .env
    assert paper.credentials.secret.get_secret_value() == "s3cret-dotenv"
    assert paper.url == "wss://example.test/v2/iex"
    assert "s3cret" not in repr(loaded.topology)
    assert "s3cret" not in loaded.topology.model_dump_json()


def test_missing_credential_variable_names_it_not_a_value(
    write_yaml: Callable[..., Path],
) -> None:
    text = GOOD.replace(
        "brokers:\n",
        'brokers:\n  paper:\n    adapter: alpaca\n    credentials: {key: "${TRADEOPS_TEST_NOPE}",'
        ' secret: "hunter2-literal"}\n',
    )
    path = write_yaml(text)
    findings = validate_file(path).findings
    (finding,) = findings
    assert finding.code == "env-missing"
    assert finding.name == "TRADEOPS_TEST_NOPE"
    assert finding.path == ("brokers", "paper", "credentials", "key")
    assert "hunter2" not in str(finding.to_json())
    # In validate (CI without secrets) a warning; with --strict, and to start a desk, an error.
    assert not finding.is_error
    (strict,) = validate_file(path, strict=True).findings
    (starting,) = validate_file(path, env_required=True).findings
    assert strict.is_error and starting.is_error and starting.code == "env-missing"


def test_a_value_from_the_environment_is_named_not_echoed(
    write_yaml: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEOPS_TEST_FEED", "private-feed-name")
    text = GOOD.replace(
        "brokers:\n", 'brokers:\n  paper: {adapter: sim, feed: "${TRADEOPS_TEST_FEED}"}\n'
    )
    (finding,) = validate_file(write_yaml(text)).findings
    assert finding.code == "invalid-value"
    assert "the value of ${TRADEOPS_TEST_FEED}" in finding.message
    assert "private-feed-name" not in str(finding.to_json())


def test_credentials_are_written_in_each_broker_s_words(
    write_yaml: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEOPS_TEST_TOKEN", "t0ken")
    good = GOOD.replace(
        "brokers:\n",
        "brokers:\n  hk:\n    adapter: alltick\n"
        '    credentials: {token: "${TRADEOPS_TEST_TOKEN}"}\n',
    )
    assert validate_file(write_yaml(good)).findings == []
    wrong = good.replace('{token: "${TRADEOPS_TEST_TOKEN}"}', "{key: a, secret: b}")
    (finding,) = validate_file(write_yaml(wrong)).findings
    assert finding.code == "credential-words"
    assert "needs token" in finding.message and "does not use key, secret" in finding.message
    assert finding.fix == 'write credentials: {token: "${ALLTICK_TOKEN}"}'


def test_secret_values_never_appear_in_findings(write_yaml: Callable[..., Path]) -> None:
    # A wrongly typed credential must be reported without echoing it.
    text = GOOD.replace(
        "brokers:\n",
        "brokers:\n  paper:\n    adapter: alpaca\n    credentials: {key: [hunter2-list], "
        "secret: 12345678}\n",
    )
    findings = validate_file(write_yaml(text)).findings
    assert findings, "a list is not a valid key"
    dumped = str([f.to_json() for f in findings])
    assert "hunter2" not in dumped and "12345678" not in dumped


def test_load_topology_raises_with_every_finding(write_yaml: Callable[..., Path]) -> None:
    path = write_yaml(GOOD + "    mode: quotes\n    prority: high\n")
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert {f.code for f in info.value.findings} == {"invalid-value", "unknown-key"}
    assert f"{path}:11:" in str(info.value)


def test_yaml_merge_keys_work(write_yaml: Callable[..., Path]) -> None:
    text = GOOD + (
        "  beta:\n    <<: &d {class: 'recipes.momentum:Momentum', broker: sim}\n"
        "    symbols: [MSFT]\n"
    )
    topo = load_topology(write_yaml(text))
    assert topo.strategies["beta"].broker == "sim"


def test_not_a_mapping(write_yaml: Callable[..., Path]) -> None:
    (finding,) = validate_file(write_yaml("- just\n- a list\n")).findings
    assert finding.code == "not-a-mapping"


def test_an_empty_section_means_none(write_yaml: Callable[..., Path]) -> None:
    topo = load_topology(write_yaml(GOOD + "processes:\n"))
    assert topo.processes == {}
