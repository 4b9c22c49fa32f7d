"""Configuration: one optional ``kataster.yaml``, environment overrides, one schema.

Every setting is declared once, in ``schemas/config.schema.json`` (type, default, meaning).
Precedence, lowest first: schema default, ``kataster.yaml``, ``KATASTER_<SECTION>_<KEY>``.
String values in the file may use ``${VAR}`` and ``${VAR:-default}``.
"""

from __future__ import annotations

import copy
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.errors import ConfigError
from schemas import json_schema


def _import_jsonschema():
    """jsonschema imports ``rfc3987_syntax`` where installed (Jupyter pulls it in), which
    compiles a grammar for the "iri" format check: 0.75 s on every command. We never check
    formats, so it stays out unless something else already loaded it."""
    if "rfc3987_syntax" in sys.modules:
        import jsonschema
        return jsonschema
    sys.modules["rfc3987_syntax"] = None          # makes its import fail: the check is skipped
    try:
        import jsonschema
    finally:
        del sys.modules["rfc3987_syntax"]
    return jsonschema


jsonschema = _import_jsonschema()


CONFIG_FILE = "kataster.yaml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_MASK = "********"


def _leaves(schema, prefix=""):
    """Yield (dotted key, leaf schema) for every setting the schema declares."""
    for name, sub in schema.get("properties", {}).items():
        key = f"{prefix}{name}"
        if sub.get("type") == "object":
            yield from _leaves(sub, key + ".")
        else:
            yield key, sub


def settings():
    """Return ``{dotted_key: leaf_schema}`` for every documented setting."""
    return dict(_leaves(json_schema("config")))


def env_name(key):
    """Environment variable that overrides a dotted setting key."""
    return "KATASTER_" + key.replace(".", "_").upper()


def _interpolate(value, environ):
    if isinstance(value, str):
        return _VAR.sub(lambda m: environ.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: _interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ) for v in value]
    return value


def _coerce(key, text, leaf):
    """Turn an environment string into the type the schema declares."""
    types = leaf["type"] if isinstance(leaf["type"], list) else [leaf["type"]]
    if text == "" and "null" in types:
        return None
    try:
        if "boolean" in types:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if "integer" in types:
            return int(text)
        if "number" in types:
            return float(text)
    except ValueError:
        raise ConfigError(f"{env_name(key)}={text!r} is not a valid {types[0]}") from None
    return text


def _set(tree, key, value):
    parts = key.split(".")
    for part in parts[:-1]:
        tree = tree.setdefault(part, {})
    tree[parts[-1]] = value


def _get(tree, key):
    for part in key.split("."):
        tree = tree[part]
    return tree


@dataclass(frozen=True)
class Config:
    """The effective configuration. Read values with ``config["database.url"]``."""

    data: dict
    source: Path | None = None

    def __getitem__(self, key):
        return _get(self.data, key)

    def with_overrides(self, **dotted):
        """Return a copy with some settings replaced (keys use ``__`` for dots)."""
        data = copy.deepcopy(self.data)
        for key, value in dotted.items():
            _set(data, key.replace("__", "."), value)
        return Config(data, self.source)

    @property
    def state_dir(self):
        """The state directory. A relative ``paths.state_dir`` is taken from the project
        directory (:func:`project_dir`), so every command finds the same embedded database
        from any folder of the project."""
        path = Path(self["paths.state_dir"]).expanduser()
        if not path.is_absolute():
            path = project_dir(self) / path
        return path.resolve()

    def masked(self):
        """The configuration as a dict with secrets replaced by ``********``."""
        data = copy.deepcopy(self.data)
        for key, leaf in settings().items():
            if leaf.get("secret") and _get(data, key):
                _set(data, key, mask_url(_get(data, key)))
        return data


def mask_url(url):
    """Hide passwords in text that may hold database URLs or conninfo strings, keep the rest
    readable: the user-info password of a URL (also one containing ``@``: everything up to the
    host's ``@``), ``password=`` in a URL's query, and ``password=…`` / ``password='…'`` in a
    key=value conninfo.

    Examples
    --------
    >>> mask_url("postgresql://u:p@ss@db.local/k?sslmode=require&password=x")
    'postgresql://u:********@db.local/k?sslmode=require&password=********'
    >>> mask_url("host=db user=u password='a b' dbname=k")
    'host=db user=u password=******** dbname=k'
    """
    text = str(url)
    # user:password@host — the password runs to the last @ before the host part.
    text = re.sub(r"(://[^:/@\s]*:)[^\s]*@(?=[^@\s/?]*(?:[/?\s]|$))", r"\1" + _MASK + "@",
                  text)
    text = re.sub(r"([?&]password=)[^&\s]*", r"\1" + _MASK, text, flags=re.I)
    text = re.sub(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1" + _MASK, text,
                  flags=re.I)
    return text


def project_dir(config=None, start=None):
    """The project directory: the one holding the configuration file in use, else the nearest
    of the working directory and its parents that holds ``kataster.yaml`` or a state directory
    with an embedded database (``.kataster/`` with ``cluster.json`` and ``pgpass``), else the
    working directory."""
    if config is not None and config.source is not None:
        return Path(config.source).expanduser().resolve().parent
    start = Path(start or Path.cwd()).resolve()
    state = Path(config["paths.state_dir"]) if config is not None else Path(".kataster")
    for folder in (start, *start.parents):
        cluster = folder / state
        if (folder / CONFIG_FILE).is_file() or ((cluster / "cluster.json").is_file()
                                                and (cluster / "pgpass").is_file()):
            return folder
    return start


def load_config(path=None, environ=None):
    """Load the effective configuration.

    Parameters
    ----------
    path : str or Path, optional
        A YAML file. Default: ``$KATASTER_CONFIG`` or ``./kataster.yaml`` if it exists.
    environ : mapping, optional
        Environment to read overrides from (default ``os.environ``).

    Returns
    -------
    Config

    Examples
    --------
    >>> cfg = load_config(environ={"KATASTER_HISTORY": "false"})
    >>> cfg["history"]
    False
    """
    environ = os.environ if environ is None else environ
    path = path or environ.get("KATASTER_CONFIG")
    if path is None:                # the nearest kataster.yaml of this folder or its parents
        found = project_dir() / CONFIG_FILE
        path = found if found.is_file() else None
    data = {}
    for key, leaf in settings().items():
        _set(data, key, copy.deepcopy(leaf.get("default")))
    if path is not None:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as err:
            raise ConfigError(f"{path}: cannot read the configuration file: {err.strerror}") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the configuration must be a mapping of sections")
        raw = _interpolate(raw, environ)
        _validate(raw, path)
        for key in settings():
            try:
                _set(data, key, _get(raw, key))
            except (KeyError, TypeError):
                pass
    for key, leaf in settings().items():
        if env_name(key) in environ:
            _set(data, key, _coerce(key, environ[env_name(key)], leaf))
    _warn_unknown_variables(environ)
    _validate(data, "effective configuration (file and KATASTER_* variables)")
    return Config(data, path)


# KATASTER_* variables that are not settings but are read elsewhere.
OTHER_VARIABLES = {"KATASTER_CONFIG", "KATASTER_TEST_DATABASE_URL"}


def _warn_unknown_variables(environ):
    """A mistyped KATASTER_* variable was ignored silently: say so, with the closest name."""
    import difflib
    import logging

    known = {env_name(k) for k in settings()} | OTHER_VARIABLES
    for name in sorted(n for n in environ if n.startswith("KATASTER_") and n not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        logging.getLogger("pipeline.config").warning(
            "%s is not a Kataster setting and is ignored%s", name,
            f" (did you mean {close[0]}?)" if close else "")


def _validate(data, where):
    try:
        jsonschema.validate(data, json_schema("config"))
    except jsonschema.ValidationError as err:
        at = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: {at}: {err.message}") from None
