"""`BrokerRegistry`: discovers gateway plugins through entry points and builds gateways by name."""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import pluggy

from broker_plugins import hookspecs
from broker_plugins._enums import Capability
from broker_plugins._errors import (
    BrokerError,
    DuplicateGatewayError,
    InvalidRequestError,
    PluginError,
    PluginLoadError,
    UnknownGatewayError,
)
from broker_plugins._gateway import IBrokerGateway
from broker_plugins._options import GatewayOption
from broker_plugins._registry_types import GatewayFactory, GatewayInfo

__all__ = ["ALLOW_ENV", "DENY_ENV", "ENTRY_POINT_GROUP", "BrokerRegistry"]

ENTRY_POINT_GROUP = "broker_plugins"
ALLOW_ENV = "BROKER_PLUGINS_ALLOW"
"""Comma-separated plugin (entry point) names: when set, only these load from entry points."""
DENY_ENV = "BROKER_PLUGINS_DENY"
"""Comma-separated plugin (entry point) names that never load from entry points."""

_GATEWAY_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@attrs.frozen
class _Origin:
    distribution: str | None = None
    version: str | None = None


@attrs.frozen
class _Registration:
    info: GatewayInfo
    factory: GatewayFactory


@attrs.define
class _Catalog:
    """What the registered plugins provide, collected once until the plugin set changes."""

    registrations: dict[str, _Registration] = attrs.Factory(dict)
    duplicates: dict[str, DuplicateGatewayError] = attrs.Factory(dict)
    errors: list[PluginError] = attrs.Factory(list)


def _names_from(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(part.strip() for part in value.replace(" ", ",").split(",") if part.strip())


class BrokerRegistry:
    """Gateway plugins of one host, loaded from the `broker_plugins` entry-point group.

    Each entry point loads on its own: one that fails is recorded in `load_errors` (a `PluginLoadError`
    with the plugin's name, its distribution and the cause chained) and the others still load; with
    `strict=True` the first failure raises instead. A name two plugins register is an error that
    names both. Plugins load on first use; gateways are built only by `create()`.

    `BROKER_PLUGINS_ALLOW` and `BROKER_PLUGINS_DENY` (comma-separated plugin names) pin which entry
    points load. Plugins a host registers itself with `register_plugin` are not filtered.
    """

    def __init__(
        self,
        *,
        strict: bool = False,
        load_entry_points: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._strict = strict
        self._load_entry_points = load_entry_points
        self._environ = os.environ if environ is None else environ
        self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        self._origins: dict[str, _Origin] = {}
        self._entry_points_loaded = False
        self._import_errors: list[PluginError] = []
        self._catalog: _Catalog | None = None

    def register_plugin(self, plugin: object, name: str | None = None) -> str:
        """Add a plugin object (a module or an object with hookimpls); returns its plugin name."""
        registered = self._pm.register(plugin, name)
        if registered is None:  # pragma: no cover - pluggy returns None only for blocked names
            raise PluginError(f"plugin {name!r} is blocked")
        self._catalog = None
        return registered

    def unregister_plugin(self, name: str) -> None:
        """Remove the plugin registered as `name`, and the gateways it provided."""
        if self._pm.unregister(name=name) is None:
            raise UnknownGatewayError(f"no plugin named {name!r} is registered")
        self._origins.pop(name, None)
        self._catalog = None

    @property
    def load_errors(self) -> tuple[PluginError, ...]:
        """Plugins that failed to import or register, and names registered twice."""
        catalog = self._collect()
        return (*self._import_errors, *catalog.errors, *catalog.duplicates.values())

    def names(self) -> list[str]:
        """Names of the gateways that can be created, sorted."""
        return sorted(self._collect().registrations)

    def gateways(self) -> list[GatewayInfo]:
        """What each creatable gateway declares, sorted by name."""
        registrations = self._collect().registrations
        return [registrations[name].info for name in sorted(registrations)]

    def create(self, name: str, /, **options: Any) -> IBrokerGateway:
        """Build a new, unconnected gateway `name` from `options`.

        Raises `UnknownGatewayError`, `DuplicateGatewayError`, the factory's own `BrokerError`
        (`InvalidRequestError` for a bad option), or `PluginError` when the factory misbehaves.
        """
        catalog = self._collect()
        duplicate = catalog.duplicates.get(name)
        if duplicate is not None:
            # A fresh instance each time: re-raising the stored one would pile up its traceback.
            raise DuplicateGatewayError(str(duplicate), gateway_name=name, plugins=duplicate.plugins)
        registrations = catalog.registrations
        registration = registrations.get(name)
        if registration is None:
            available = ", ".join(sorted(registrations)) or "none"
            hint = f"; {len(self.load_errors)} plugin(s) failed to load" if self.load_errors else ""
            raise UnknownGatewayError(f"no gateway named {name!r} (available: {available}{hint})")
        plugin = registration.info.plugin
        try:
            gateway = registration.factory(**options)
        except BrokerError:
            raise
        except Exception as exc:
            raise PluginError(f"the factory of gateway {name!r} (plugin {plugin!r}) failed: {exc!r}") from exc
        if not isinstance(gateway, IBrokerGateway):
            raise PluginError(
                f"the factory of gateway {name!r} (plugin {plugin!r}) returned "
                f"{type(gateway).__name__}, which is not an IBrokerGateway"
            )
        return gateway

    def conformance_harness(self, gateway_name: str) -> object | None:
        """The conformance harness a plugin provides for `gateway_name`, or None."""
        self._load()
        harness: object | None = self._pm.hook.provide_conformance_harness(gateway_name=gateway_name)
        return harness

    def embedded_backend(self, gateway_name: str) -> object | None:
        """The in-process backend a plugin provides for `gateway_name` (hosts' default), or None."""
        self._load()
        backend: object | None = self._pm.hook.provide_embedded_backend(gateway_name=gateway_name)
        return backend

    def _record(self, error: PluginError) -> None:
        if self._strict:
            raise error
        self._import_errors.append(error)

    def _load(self) -> None:
        if self._entry_points_loaded or not self._load_entry_points:
            return
        self._entry_points_loaded = True
        allow = _names_from(self._environ.get(ALLOW_ENV))
        deny = _names_from(self._environ.get(DENY_ENV)) or frozenset()
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        for entry_point in sorted(entry_points, key=lambda ep: ep.name):
            if entry_point.name in deny or (allow is not None and entry_point.name not in allow):
                continue
            dist = entry_point.dist
            origin = _Origin(dist.name, dist.version) if dist is not None else _Origin()
            try:
                plugin = entry_point.load()
                self._pm.register(plugin, name=entry_point.name)
            except Exception as exc:  # noqa: BLE001 - any failure of one plugin is recorded, not fatal
                error = PluginLoadError(
                    f"plugin {entry_point.name!r} ({entry_point.value}) from distribution "
                    f"{origin.distribution or 'unknown'} failed to load: {exc!r}",
                    plugin_name=entry_point.name,
                    distribution=origin.distribution,
                )
                error.__cause__ = exc
                self._record(error)
                continue
            self._origins[entry_point.name] = origin

    def _collect(self) -> _Catalog:
        self._load()
        if self._catalog is not None:
            return self._catalog
        catalog = _Catalog()
        claims: dict[str, list[_Registration]] = {}
        # One plugin at a time, so a failing plugin is attributed and the others still register.
        for impl in self._pm.hook.register_broker_gateways.get_hookimpls():
            origin = self._origins.get(impl.plugin_name, _Origin())
            own: dict[str, _Registration] = {}
            try:
                register = _Registrar(impl.plugin_name, origin, own)
                impl.function(**dict.fromkeys(impl.argnames, register))
            except Exception as exc:
                error = PluginLoadError(
                    f"plugin {impl.plugin_name!r} failed to register its gateways: {exc!r}",
                    plugin_name=impl.plugin_name,
                    distribution=origin.distribution,
                )
                if self._strict:
                    raise error from exc
                error.__cause__ = exc
                catalog.errors.append(error)
                continue
            for name, registration in own.items():
                claims.setdefault(name, []).append(registration)
        for name, registrations in claims.items():
            if len(registrations) == 1:
                catalog.registrations[name] = registrations[0]
                continue
            plugins = tuple(registration.info.plugin for registration in registrations)
            duplicate = DuplicateGatewayError(
                f"gateway {name!r} is registered by more than one plugin: {', '.join(map(repr, plugins))}",
                gateway_name=name,
                plugins=plugins,
            )
            if self._strict:
                raise duplicate
            catalog.duplicates[name] = duplicate
        self._catalog = catalog
        return catalog


class _Registrar:
    """The `register` callback one plugin receives; it collects into that plugin's own dict."""

    def __init__(self, plugin_name: str, origin: _Origin, into: dict[str, _Registration]) -> None:
        self._plugin_name = plugin_name
        self._origin = origin
        self._into = into

    def __call__(
        self,
        name: str,
        factory: GatewayFactory,
        *,
        description: str = "",
        capabilities: Iterable[Capability] = (),
        options: Sequence[GatewayOption] = (),
    ) -> None:
        if not isinstance(name, str) or _GATEWAY_NAME.fullmatch(name) is None:
            raise InvalidRequestError(
                f"gateway name {name!r} is malformed: use 1-64 lowercase letters, digits or _ . -"
            )
        if not callable(factory):
            raise InvalidRequestError(f"the factory for gateway {name!r} is not callable: {factory!r}")
        if name in self._into:
            raise InvalidRequestError(f"plugin {self._plugin_name!r} registered gateway {name!r} twice")
        declared = tuple(options)
        if not all(isinstance(option, GatewayOption) for option in declared):
            raise InvalidRequestError(f"the options of gateway {name!r} must be GatewayOption objects")
        spelled = [option.cli_flag for option in declared]
        if len(set(spelled)) != len(spelled):
            raise InvalidRequestError(f"gateway {name!r} declares one option flag twice: {spelled}")
        self._into[name] = _Registration(
            info=GatewayInfo(
                name=name,
                plugin=self._plugin_name,
                distribution=self._origin.distribution,
                version=self._origin.version,
                description=description,
                capabilities=frozenset(Capability(c) for c in capabilities),
                options=declared,
            ),
            factory=factory,
        )
