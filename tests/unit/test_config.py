"""Typed configuration: console.toml and node.toml are declared once, validated once, documented once.

The README's tables are generated from the declarations (``markdown_table``,
``node_config_table``); these tests fail when the README, the dataclasses and the files drift apart.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest
import tomli_w

from core.errors import BadInput
from core.node.root import CONFIG_ENV, ROOT_ENV, NodeConfig, node_config_table
from core.settings import default_text
from core.site.config import RETIRED, SECTIONS, ChannelPolicy, Config, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_section(heading: str) -> str:
    text = README.read_text("utf-8")
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    return text[start : end if end >= 0 else None]


def _table(section: str) -> str:
    """The markdown table lines of ``section`` (it holds one table), joined by newlines."""
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def _cells(table: str) -> list[list[str]]:
    rows = [line.strip("|").split(" | ") for line in table.splitlines()[2:]]
    return [[c.strip() for c in row] for row in rows]


# -- the README tables ------------------------------------------------------------------------


#: Tables declared inside a section: ``[channels.<name>]`` policies (issue 16) follow ``[channels]``.
POLICY_ROWS = {"channels": [("channels.<name>", ChannelPolicy)]}


def test_readme_console_toml_table_is_generated_from_the_dataclasses() -> None:
    table = _table(_readme_section("## Configuration (`console.toml`)").split("### Node configuration")[0])
    assert table == markdown_table(), "README out of date: paste core.site.config.markdown_table()"
    listed = [(re.sub(r"[`\[\]]", "", s), k.strip("`"), d) for s, k, d, _ in _cells(table)]
    sections = [(n, c) for name, cls in SECTIONS.items() for n, c in [(name, cls)] + POLICY_ROWS.get(name, [])]
    declared = [(name, f.name, default_text(f)) for name, cls in sections for f in dataclasses.fields(cls)]
    assert listed == declared


def test_readme_node_toml_table_is_generated_from_node_config() -> None:
    table = _table(_readme_section("### Node configuration (`node.toml`)"))
    assert table == node_config_table(), "README out of date: paste core.node.root.node_config_table()"
    assert [(k.strip("`"), d) for k, d, _ in _cells(table)] == [
        (f.name, default_text(f)) for f in dataclasses.fields(NodeConfig)
    ]


def test_every_declared_key_has_a_doc_line() -> None:
    for cls in [*SECTIONS.values(), NodeConfig]:
        for f in dataclasses.fields(cls):
            assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no doc"


# -- console.toml -----------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def _refused(path: Path, *needles: str) -> str:
    with pytest.raises(BadInput) as exc:
        Config.load(path)
    message = str(exc.value)
    assert exc.value.exit_code == 2
    assert "\n" not in message and message.startswith(f"{path}: ")
    for needle in needles:
        assert needle in message, message
    return message


def test_defaults_round_trip(tmp_path: Path) -> None:
    cfg = Config.new(tmp_path / "console.toml", name="here", store="store", signing_key="keys/signing.pem")
    cfg.save()
    text = (tmp_path / "console.toml").read_text("utf-8")
    assert tomllib.loads(text) == cfg.to_toml()
    again = Config.load(tmp_path / "console.toml")
    assert again.to_toml() == cfg.to_toml()
    assert list(again.to_toml()) == list(SECTIONS)
    assert again.site.name == "here" and again.publish.workers == 0 and again.http.retries == 3
    empty = Config.load(_write(tmp_path / "empty.toml", ""))
    assert empty.to_toml() == Config(tmp_path / "x.toml").to_toml()
    assert empty.fleet == SECTIONS["fleet"]()


def test_values_are_typed_and_frozen(tmp_path: Path) -> None:
    cfg = Config.load(
        _write(
            tmp_path / "c.toml",
            '[fleet]\nfanout = 8\ngroups = { a = "n[1-2]" }\n[http]\ntimeout_s = 2.5\nretries = 0\n',
        )
    )
    assert (cfg.fleet.fanout, cfg.fleet.groups, cfg.http.timeout_s, cfg.http.retries) == (8, {"a": "n[1-2]"}, 2.5, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.fleet.fanout = 9  # type: ignore[misc]


def test_unknown_key_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "console.toml", "[publish]\nwrkers = 2\n")
    _refused(path, "[publish]", "'wrkers'", "known: pre_publish")


def test_unknown_section_refused(tmp_path: Path) -> None:
    _refused(_write(tmp_path / "console.toml", "[pubish]\nworkers = 2\n"), "[pubish]", "unknown section")
    _refused(_write(tmp_path / "console.toml", 'site = "x"\n'), "[site] must be a table")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('[fleet]\nfanout = "many"\n', ("[fleet] fanout must be a whole number", "'many'")),
        ("[http]\nretries = true\n", ("[http] retries must be a whole number",)),
        ("[http]\nretries = 1.5\n", ("[http] retries must be a whole number",)),
        ('[http]\nproxies = ["http://p:3128", 1]\n', ("[http] proxies must be a list of strings",)),
        ('[http]\nproxies = "http://p:3128"\n', ("[http] proxies must be a list of strings",)),
        ("[http]\ntimeout_s = nan\n", ("[http] timeout_s must be a number",)),
        ("[http]\ntimeout_s = 0\n", ("[http] timeout_s must be more than 0",)),
        ("[channels]\nlifetime_days = 0\n", ("[channels] lifetime_days must be more than 0",)),
        ("[channels]\nlifetime_days = inf\n", ("[channels] lifetime_days must be a number",)),
        ("[build]\nparallel = 0\n", ("[build] parallel must be at least 1",)),
        ("[publish]\nworkers = -1\n", ("[publish] workers must be at least 0",)),
        ("[fleet]\ngroups = { a = 3 }\n", ("[fleet] groups must be a table of strings",)),
        ("[node]\nremote_console = 7\n", ("[node] remote_console must be a string or a list of strings",)),
        ("[site]\nstore = []\n", ("[site] store must be a string",)),
        ("[trust]\nkeys = [1]\n", ("[trust] keys must be a list of tables",)),
    ],
)
def test_wrong_type_or_range_refused_in_one_line(tmp_path: Path, text: str, needles: tuple[str, ...]) -> None:
    _refused(_write(tmp_path / "console.toml", text), *needles)


def test_set_validates_like_the_file(tmp_path: Path) -> None:
    cfg = Config(tmp_path / "console.toml")
    cfg.set("channels", "lifetime_days", 2)
    assert cfg.channels.lifetime_days == 2
    with pytest.raises(BadInput, match=r"\[channels\] lifetime_days must be more than 0"):
        cfg.set("channels", "lifetime_days", 0)
    with pytest.raises(BadInput, match="unknown key 'lifetime'"):
        cfg.set("channels", "lifetime", 2)
    with pytest.raises(BadInput, match=r"unknown section \[chanels\]"):
        cfg.set("chanels", "lifetime_days", 2)
    assert cfg.channels.lifetime_days == 2


def test_retired_keys_from_older_files_are_accepted_and_dropped(tmp_path: Path) -> None:
    assert ("node", "keep") in RETIRED
    path = _write(tmp_path / "console.toml", '[node]\nkeep = 3\nremote_console = "console"\n')
    cfg = Config.load(path)
    cfg.save()
    assert "keep" not in tomllib.loads(path.read_text("utf-8"))["node"]


def test_init_writes_every_declared_key(tmp_path: Path) -> None:
    from core.site.site import Site

    site = Site.init(tmp_path / "site")
    try:
        written = tomllib.loads((tmp_path / "site" / "console.toml").read_text("utf-8"))
        assert {s: set(v) for s, v in written.items()} == {
            name: {f.name for f in dataclasses.fields(cls)} for name, cls in SECTIONS.items()
        }
        assert written["site"]["signing_key"] == "keys/signing.pem" and len(written["trust"]["keys"]) == 1
        assert site.trust.thresholds == {"release": 1, "channel": 1}
    finally:
        site.close()


# -- [http] timeout_s and retries reach the HTTP store ------------------------------------------


def test_open_store_passes_timeout_and_retries_to_http_store(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.store import open_store
    from core.store.http import HttpStore

    seen: dict = {}
    monkeypatch.setattr(HttpStore, "open", classmethod(lambda cls, urls, **kw: seen.update(urls=urls, **kw)))
    open_store("http://a.example/s/,http://b.example/s/", proxies=["http://p:1"], timeout_s=2.5, retries=0)
    assert seen["urls"] == ["http://a.example/s/", "http://b.example/s/"] and seen["proxies"] == ["http://p:1"]
    assert seen["tries"] == 1
    assert (seen["timeout"].read, seen["timeout"].write, seen["timeout"].connect) == (2.5, 2.5, 2.5)
    open_store("http://a.example/s/", timeout_s=30, retries=3)
    assert seen["tries"] == 4 and (seen["timeout"].read, seen["timeout"].connect) == (30, 5.0)


def test_site_store_uses_the_http_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.store
    from core.site.site import Site

    Site.init(tmp_path / "site").close()
    path = tmp_path / "site" / "console.toml"
    data = tomllib.loads(path.read_text("utf-8"))
    data["site"]["store"] = "http://depot.example/store/"
    data["http"].update(timeout_s=7, retries=1, deadline_s=90, proxies=["http://proxy.example:3128"])
    path.write_text(tomli_w.dumps(data), "utf-8")
    seen: dict = {}
    monkeypatch.setattr(core.store, "open_store", lambda location, **kw: seen.update(location=location, **kw))
    site = Site(tmp_path / "site")
    try:
        site.store  # noqa: B018 (opens it)
    finally:
        site.close()
    assert seen == {
        "location": "http://depot.example/store/",
        "proxies": ["http://proxy.example:3128"],
        "timeout_s": 7,
        "retries": 1,
        "deadline_s": 90,
    }


# -- node.toml ------------------------------------------------------------------------------------


@pytest.fixture
def node_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated node: no user config unless written to the returned path."""
    user = tmp_path / "user-node.toml"
    monkeypatch.setenv(CONFIG_ENV, str(user))
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "noderoot"))
    return user


def test_node_defaults_and_merge_order(tmp_path: Path, node_env: Path) -> None:
    cfg = NodeConfig.load()
    assert cfg.root == str(tmp_path / "noderoot") and cfg.keep == 3 and cfg.arch is None and cfg.store is None
    assert cfg.workers >= 2 and (cfg.timeout_s, cfg.retries) == (30, 3)
    _write(node_env, f'[node]\nroot = "{tmp_path / "r"}"\nkeep = 5\nstore = "http://s.example/"\nretries = 0\n')
    (tmp_path / "r").mkdir()
    _write(tmp_path / "r" / "node.toml", 'keep = 2\narch = "zen3"\nworkers = 3\n')
    cfg = NodeConfig.load()
    assert (cfg.root, cfg.keep, cfg.arch, cfg.store, cfg.workers, cfg.retries) == (
        str(tmp_path / "r"),
        2,
        "zen3",
        "http://s.example/",
        3,
        0,
    )
    assert NodeConfig.load(tmp_path / "other").root == str(tmp_path / "other")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("kep = 2\n", ("unknown key 'kep'", "known: root, keep")),
        ("[node]\nkep = 2\n", ("[node] unknown key 'kep'",)),
        ("[node]\nkeep = 2\n[http]\ntimeout_s = 3\n", ("unknown key 'http' outside [node]",)),
        ("keep = 0\n", ("keep must be at least 1",)),
        ('keep = "3"\n', ("keep must be a whole number",)),
        ("workers = true\n", ("workers must be a whole number",)),
        ('proxies = "http://p:1"\n', ("proxies must be a list of strings",)),
        ("arch = 3\n", ("arch must be a string, not 3",)),
        ("timeout_s = -1\n", ("timeout_s must be more than 0",)),
    ],
)
def test_node_config_refuses_unknown_keys_and_wrong_types(node_env: Path, text: str, needles: tuple[str, ...]) -> None:
    _write(node_env, text)
    with pytest.raises(BadInput) as exc:
        NodeConfig.load()
    message = str(exc.value)
    assert exc.value.exit_code == 2 and "\n" not in message and message.startswith(f"{node_env}: ")
    for needle in needles:
        assert needle in message, message
