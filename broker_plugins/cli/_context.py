"""`Context`: what every `brokerctl` command gets, and the one place output is written."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import TextIO

import attrs

from broker_plugins._options import GatewayOption
from broker_plugins._registry import BrokerRegistry
from broker_plugins.cli._output import dumps

__all__ = ["Context"]


@attrs.define
class Context:
    """Parsed options, the plugin registry, the output streams and the environment of one run."""

    args: argparse.Namespace
    registry: BrokerRegistry
    out: TextIO
    err: TextIO
    environ: Mapping[str, str]
    gateway_name: str = "grpc"
    """The gateway the command line is about (`--gateway`, the connection's, or the default)."""
    declared: tuple[GatewayOption, ...] = ()
    """The options that gateway declares: the flags the command line took for it."""
    flags: dict[str, object] = attrs.Factory(dict)
    """Gateway options given as flags, by option name (as text, or True for a switch)."""
    secrets: list[str] = attrs.Factory(list)
    """Values that must never be printed (tokens); `redact` masks them in every message."""
    aliases: dict[str, str] = attrs.Factory(dict)
    """Text shown as something more telling (the embedded bridge's temporary address)."""

    @property
    def json(self) -> bool:
        """Whether output is JSON instead of tables."""
        return bool(self.args.json)

    def declared_for(self, gateway_name: str) -> tuple[GatewayOption, ...]:
        """The options another registered gateway declares (none for an unknown name)."""
        for info in self.registry.gateways():
            if info.name == gateway_name:
                return info.options
        return ()

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by `***`."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def humane(self, text: str) -> str:
        """`text` redacted, with aliases applied: for messages to a person (notes and errors)."""
        text = self.redact(text)
        for raw, shown in self.aliases.items():
            text = text.replace(raw, shown)
        return text

    def note(self, message: str) -> None:
        """A line for the person at the terminal, on stderr (never mixed into the data)."""
        print(f"brokerctl: {self.humane(message)}", file=self.err, flush=True)

    def line(self, text: str = "") -> None:
        """A line of output on stdout."""
        print(self.redact(text), file=self.out, flush=True)

    def emit(self, data: object, render: Callable[[], str]) -> None:
        """The command's result: one JSON document with `--json`, else what `render` draws."""
        self.line(dumps(data) if self.json else render())

    def emit_line(self, data: object, render: Callable[[], str]) -> None:
        """One event of a stream: a JSON line with `--json`, else what `render` draws."""
        self.line(dumps(data, lines=True) if self.json else render())
