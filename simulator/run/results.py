"""The results of a ``fedsim run`` as one JSON document, read back and merged (pure).

``--json FILE`` writes :func:`results_json`; ``--merge`` reads documents with
:func:`load_results` and joins shards with :func:`merge_results`. The document
holds everything the table, the JUnit XML and the HTML page are made from, so
a merged report renders exactly as the unsharded run would. The format is
documented for users in ``scenarios/README.md`` ("The JSON results").

Version history: 1 had no ``format``/``version`` keys (calls without their
messages, labs without their facts); 2 is this one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from simulator import __version__
from simulator.errors import FedsimError
from simulator.lab import Expect
from simulator.run.model import (
    TLS_REFUSED,
    CallReport,
    CallTrace,
    LabCert,
    LabFacts,
    LabPeer,
    LabReport,
    Mismatch,
    Outcome,
    WireMessage,
    status_text,
)
from simulator.run.shard import Catalogue, Shard

FORMAT = "fedsim-run-results"
VERSION = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResults:
    """One run (or the merge of a run's shards).

    Attributes:
        catalogue: every lab file of the catalogue (all shards), ids and hashes.
        shard: which slice this run ran; None for the whole catalogue.
        pattern: the ``-k`` selection, if any.
        labs: the labs that ran (with at least one selected call, or an error).
        merged: the shards this document was merged from (``1/3``, ...).
    """

    catalogue: Catalogue
    shard: Shard | None = None
    pattern: str | None = None
    labs: tuple[LabReport, ...] = ()
    merged: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(lab.ok for lab in self.labs)


# --- writing --------------------------------------------------------------------------


def summary_json(labs: Sequence[LabReport]) -> dict[str, object]:
    calls = [c for lab in labs for c in lab.calls]
    return {
        "labs": len(labs),
        "calls": len(calls),
        "passed": sum(1 for c in calls if c.verdict == "PASS"),
        "failed": sum(1 for c in calls if c.verdict != "PASS"),
        "lab_errors": sum(1 for lab in labs if lab.error is not None),
        "ok": all(lab.ok for lab in labs),
    }


def _expect_json(e: Expect) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in ("status", "edge_log", "ms_diagnostics", "forwarded", "rule", "media"):
        value = getattr(e, key)
        if value is not None:
            out[key] = value
    if e.ms_diagnostics_params:
        out["ms_diagnostics_params"] = dict(e.ms_diagnostics_params)
    if e.notify is not None:
        out["notify"] = e.notify if isinstance(e.notify, str) else list(e.notify)
    if e.bye_after is not None:
        out["bye_after"] = e.bye_after
    if e.text is not None:
        out["text"] = e.text
    return out


def _got_json(got: Outcome) -> dict[str, object]:
    return {
        "status": status_text(got),
        "edge_log": got.edge_log,
        "rule": got.rule,
        "ms_diagnostics": got.ms_diagnostics,
        "ms_diagnostics_params": dict(got.ms_diagnostics_params),
        "forwarded": got.forwarded,
        "error": got.error,
        "media": got.media,
        "notify": list(got.notify),
        "bye_after": got.bye_after,
        "text": got.text,
    }


def _call_json(c: CallReport) -> dict[str, object]:
    t = c.trace
    return {
        "id": c.id,
        "number": c.number,
        "call": c.label,
        "direction": t.direction,
        "method": t.method,
        "from": t.from_uri,
        "to": t.to_uri,
        "pai": t.pai,
        "expected": _expect_json(c.expect),
        "got": _got_json(c.got),
        "verdict": c.verdict,
        "mismatches": [{"key": m.key, "expected": m.expected, "got": m.got} for m in c.mismatches],
        "caller": t.caller,
        "peer": t.peer_name,
        "edge_fqdn": t.edge_fqdn,
        "edge_cert_names": list(t.edge_cert_names),
        "peer_cert_names": list(t.peer_cert_names),
        "request_line": t.request_line,
        "responses": list(t.responses),
        "partner_requests": list(t.partner_requests),
        "partner_tls": list(t.partner_tls),
        "edge_record": t.edge_record,
        "event": None if t.event is None else dict(t.event),
        "started": t.started,
        "caller_address": t.caller_address,
        "edge_address": t.edge_address,
        "messages": [
            {"leg": m.leg, "sender": m.sender, "receiver": m.receiver, "text": m.text}
            for m in t.messages
        ],
        "seconds": round(c.seconds, 3),
    }


def _facts_json(f: LabFacts) -> dict[str, object]:
    return {
        "edge_fqdn": f.edge_fqdn,
        "domains": list(f.domains),
        "edge_cert": f.edge_cert,
        "edge_trust": list(f.edge_trust),
        "policy": [list(p) for p in f.policy],
        "profile": [list(p) for p in f.profile],
        "federation": f.federation,
        "hosted": f.hosted,
        "dns_records": f.dns_records,
        "dns_zones": [{"file": name, "text": text} for name, text in f.dns_zones],
        "dns_silent": list(f.dns_silent),
        "dns_servfail": list(f.dns_servfail),
        "certs": [
            {
                "name": c.name,
                "subject": c.subject,
                "issuer": c.issuer,
                "cn": c.cn,
                "sans": list(c.sans),
                "eku": list(c.eku),
                "not_before": c.not_before,
                "not_after": c.not_after,
                "validity": c.validity,
                "ca": c.ca,
                "public": c.public,
                "issuer_name": c.issuer_name,
                "root": c.root,
                "sha256": c.sha256,
            }
            for c in f.certs
        ],
        "peers": [
            {
                "name": p.name,
                "cert": p.cert,
                "trust": list(p.trust),
                "tls": p.tls,
                "answer": p.answer,
                "listen": p.listen,
                "port": p.port,
                "require_client_cert": p.require_client_cert,
            }
            for p in f.peers
        ],
    }


def results_doc(run: RunResults) -> dict[str, object]:
    """The JSON document of ``run``, as plain data."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "fedsim": __version__,
        "catalogue": {
            "digest": run.catalogue.digest,
            "labs": [{"id": i, "sha256": h} for i, h in run.catalogue.labs],
        },
        "shard": None
        if run.shard is None
        else {"index": run.shard.index, "count": run.shard.count},
        "merged": list(run.merged),
        "pattern": run.pattern,
        "summary": summary_json(run.labs),
        "labs": [
            {
                "id": lab.id,
                "name": lab.name,
                "path": lab.path,
                "summary": lab.summary,
                "error": lab.error,
                "seconds": round(lab.seconds, 3),
                "selected": lab.selected,
                "facts": None if lab.facts is None else _facts_json(lab.facts),
                "calls": [_call_json(c) for c in lab.calls],
            }
            for lab in run.labs
        ],
    }


def results_json(run: RunResults) -> str:
    """``--json FILE``: every lab, every call, expected, got, messages, records, lab facts."""
    return json.dumps(results_doc(run), indent=2, ensure_ascii=False, default=str) + "\n"


# --- reading --------------------------------------------------------------------------


class _Obj:
    """A JSON object being read, with errors that say where (``labs[3].calls[0].got``)."""

    def __init__(self, data: object, where: str, source: str) -> None:
        if not isinstance(data, dict):
            raise _bad(source, where, "an object", data)
        self.data = cast(dict[str, Any], data)
        self.where = where
        self.source = source

    def _get(self, key: str) -> object:
        if key not in self.data:
            raise FedsimError(
                f"{self.source}: {self.where}.{key} is missing "
                "(not a 'fedsim run --json' file, or damaged)"
            )
        return self.data[key]

    def _typed(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        value = self._get(key)
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            raise _bad(self.source, f"{self.where}.{key}", what, value)
        return value

    def text(self, key: str) -> str:
        return cast(str, self._typed(key, str, "a string"))

    def opt_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def integer(self, key: str) -> int:
        return cast(int, self._typed(key, int, "an integer"))

    def opt_integer(self, key: str) -> int | None:
        return None if self.data.get(key) is None else self.integer(key)

    def number(self, key: str) -> float:
        return float(self._typed(key, (int, float), "a number"))

    def flag(self, key: str) -> bool:
        return cast(bool, self._typed(key, bool, "true or false"))

    def opt_flag(self, key: str) -> bool | None:
        return None if self.data.get(key) is None else self.flag(key)

    def texts(self, key: str) -> tuple[str, ...]:
        items = self._typed(key, list, "a list")
        if not all(isinstance(i, str) for i in items):
            raise _bad(self.source, f"{self.where}.{key}", "a list of strings", items)
        return tuple(items)

    def obj(self, key: str) -> _Obj:
        return _Obj(self._get(key), f"{self.where}.{key}", self.source)

    def opt_obj(self, key: str) -> _Obj | None:
        return None if self.data.get(key) is None else self.obj(key)

    def objs(self, key: str) -> list[_Obj]:
        items = self._typed(key, list, "a list")
        return [_Obj(v, f"{self.where}.{key}[{n}]", self.source) for n, v in enumerate(items)]

    def mapping(self, key: str) -> dict[str, str]:
        value = self.obj(key).data
        if not all(isinstance(v, str) for v in value.values()):
            raise _bad(self.source, f"{self.where}.{key}", "an object of strings", value)
        return cast(dict[str, str], value)

    def pairs(self, key: str) -> tuple[tuple[str, str], ...]:
        items = self._typed(key, list, "a list")
        out: list[tuple[str, str]] = []
        for item in items:
            if not (
                isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)
            ):
                raise _bad(self.source, f"{self.where}.{key}", "a list of [key, value]", item)
            out.append((item[0], item[1]))
        return tuple(out)

    def raw(self, key: str) -> object:
        return self.data.get(key)


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _bad(source: str, where: str, what: str, value: object) -> FedsimError:
    shown = json.dumps(value, default=str)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return FedsimError(f"{source}: {where} should be {what}, not {shown}")


def _expect(o: _Obj) -> Expect:
    # Only the keys the lab file sets are written (absent = not checked).
    params = o.mapping("ms_diagnostics_params") if "ms_diagnostics_params" in o.data else {}
    return Expect(
        status=o.opt_integer("status"),
        edge_log=o.opt_text("edge_log"),
        ms_diagnostics=o.opt_integer("ms_diagnostics"),
        ms_diagnostics_params=params,
        forwarded=o.opt_flag("forwarded"),
        rule=o.opt_text("rule"),
        media=o.opt_text("media"),
        notify=_notify(o),
        bye_after=None if o.data.get("bye_after") is None else o.number("bye_after"),
        text=o.opt_text("text"),
    )


def _notify(o: _Obj) -> str | tuple[str, ...] | None:
    """``expected.notify``: an availability, or a list of NOTIFYs (absent: not checked)."""
    if o.data.get("notify") is None:
        return None
    if isinstance(o.data["notify"], str):
        return o.text("notify")
    return o.texts("notify")


def _outcome(o: _Obj) -> Outcome:
    status = o.raw("status")
    if status is not None and status != TLS_REFUSED and not isinstance(status, int):
        raise _bad(o.source, f"{o.where}.status", f"a status, null or {TLS_REFUSED!r}", status)
    return Outcome(
        status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        edge_log=o.opt_text("edge_log"),
        rule=o.opt_text("rule"),
        ms_diagnostics=o.opt_integer("ms_diagnostics"),
        ms_diagnostics_params=o.mapping("ms_diagnostics_params"),
        forwarded=o.opt_flag("forwarded"),
        error=o.opt_text("error"),
        media=o.opt_text("media"),
        notify=o.texts("notify") if "notify" in o.data else (),
        bye_after=None if o.data.get("bye_after") is None else o.number("bye_after"),
        text=o.opt_text("text"),
    )


def _message(o: _Obj) -> WireMessage:
    leg = o.text("leg")
    if leg not in ("federation", "client"):
        raise _bad(o.source, f"{o.where}.leg", "'federation' or 'client'", leg)
    return WireMessage(
        leg=cast(Literal["federation", "client"], leg),
        sender=o.text("sender"),
        receiver=o.text("receiver"),
        text=o.text("text"),
    )


def _call(o: _Obj, scenario: str) -> CallReport:
    got = _outcome(o.obj("got"))
    event = o.opt_obj("event")
    trace = CallTrace(
        scenario=scenario,
        number=o.integer("number"),
        direction=o.text("direction"),
        method=o.text("method"),
        from_uri=o.text("from"),
        to_uri=o.text("to"),
        pai=o.opt_text("pai"),
        caller=o.text("caller"),
        edge_fqdn=o.text("edge_fqdn"),
        edge_cert_names=o.texts("edge_cert_names"),
        peer_name=o.opt_text("peer"),
        peer_cert_names=o.texts("peer_cert_names"),
        request_line=o.text("request_line"),
        responses=o.texts("responses"),
        partner_requests=o.texts("partner_requests"),
        error=got.error,
        event=None if event is None else event.data,
        edge_record=o.opt_text("edge_record"),
        started=o.opt_text("started"),
        caller_address=o.opt_text("caller_address"),
        edge_address=o.opt_text("edge_address"),
        messages=tuple(_message(m) for m in o.objs("messages")),
        partner_tls=o.texts("partner_tls"),
    )
    mismatches = tuple(
        Mismatch(key=m.text("key"), expected=m.raw("expected"), got=m.raw("got"))
        for m in o.objs("mismatches")
    )
    return CallReport(
        id=o.text("id"),
        number=trace.number,
        label=o.text("call"),
        expect=_expect(o.obj("expected")),
        got=got,
        mismatches=mismatches,
        trace=trace,
        seconds=o.number("seconds"),
    )


def _facts(o: _Obj) -> LabFacts:
    certs = tuple(
        LabCert(
            name=c.text("name"),
            subject=c.text("subject"),
            issuer=c.text("issuer"),
            cn=c.opt_text("cn"),
            sans=c.texts("sans"),
            eku=c.texts("eku"),
            not_before=c.text("not_before"),
            not_after=c.text("not_after"),
            validity=c.text("validity"),
            ca=c.flag("ca"),
            public=c.flag("public"),
            issuer_name=c.opt_text("issuer_name"),
            root=c.opt_text("root"),
            sha256=c.text("sha256"),
        )
        for c in o.objs("certs")
    )
    peers = tuple(
        LabPeer(
            name=p.text("name"),
            cert=p.text("cert"),
            trust=p.texts("trust"),
            tls=p.text("tls"),
            answer=p.integer("answer"),
            listen=p.opt_text("listen"),
            port=p.opt_integer("port"),
            require_client_cert=p.flag("require_client_cert"),
        )
        for p in o.objs("peers")
    )
    return LabFacts(
        edge_fqdn=o.text("edge_fqdn"),
        domains=o.texts("domains"),
        edge_cert=o.text("edge_cert"),
        edge_trust=o.texts("edge_trust"),
        policy=o.pairs("policy"),
        profile=o.pairs("profile"),
        federation=o.text("federation"),
        hosted=o.flag("hosted"),
        dns_records=o.text("dns_records"),
        dns_zones=tuple((z.text("file"), z.text("text")) for z in o.objs("dns_zones")),
        dns_silent=o.texts("dns_silent"),
        dns_servfail=o.texts("dns_servfail"),
        certs=certs,
        peers=peers,
    )


def _lab(o: _Obj) -> LabReport:
    name = o.text("name")
    facts = o.opt_obj("facts")
    return LabReport(
        name=name,
        id=o.text("id"),
        path=o.text("path"),
        summary=o.text("summary"),
        calls=tuple(_call(c, name) for c in o.objs("calls")),
        error=o.opt_text("error"),
        seconds=o.number("seconds"),
        selected=o.integer("selected"),
        facts=None if facts is None else _facts(facts),
    )


def load_results(text: str, *, source: str) -> RunResults:
    """Read a document written by :func:`results_json`.

    Raises:
        FedsimError: not JSON, another format or version, or a damaged document;
            one line naming ``source`` and the place.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FedsimError(f"{source}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        old = isinstance(data, dict) and "labs" in data and "summary" in data
        why = (
            "written by an older fedsim (no format version): run it again"
            if old
            else ("not a 'fedsim run --json' file")
        )
        raise FedsimError(f"{source}: {why}")
    doc = _Obj(data, "$", source)
    version = doc.integer("version")
    if version != VERSION:
        raise FedsimError(
            f"{source}: results format version {version}; this fedsim reads version {VERSION} "
            "(merge files written by the same fedsim)"
        )
    cat = doc.obj("catalogue")
    catalogue = Catalogue(labs=tuple((e.text("id"), e.text("sha256")) for e in cat.objs("labs")))
    if catalogue.digest != cat.text("digest"):
        raise FedsimError(f"{source}: catalogue digest does not match its labs (edited?)")
    shard_obj = doc.opt_obj("shard")
    shard: Shard | None = None
    if shard_obj is not None:
        try:
            shard = Shard(index=shard_obj.integer("index"), count=shard_obj.integer("count"))
        except ValueError as exc:
            raise FedsimError(f"{source}: {exc}") from None
    return RunResults(
        catalogue=catalogue,
        shard=shard,
        pattern=doc.opt_text("pattern"),
        labs=tuple(_lab(lab) for lab in doc.objs("labs")),
        merged=doc.texts("merged"),
    )


# --- merging --------------------------------------------------------------------------


def merge_results(runs: Sequence[tuple[str, RunResults]]) -> RunResults:
    """Join the shards of one run into the report the unsharded run would have given.

    Args:
        runs: ``(file name, results)`` of every shard, in any order.

    Raises:
        FedsimError: runs of different catalogues or ``-k`` selections, shards of
            different splits, the same shard twice, a lab in two files, or a
            missing shard.
    """
    if not runs:
        raise FedsimError("--merge needs at least one JSON file")
    first_name, first = runs[0]
    for name, run in runs[1:]:
        if run.catalogue.digest != first.catalogue.digest:
            diff = first.catalogue.differences(run.catalogue)
            shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
            raise FedsimError(
                f"{first_name} and {name} are runs of different catalogues ({shown}): "
                "merge only the shards of one run"
            )
        if run.pattern != first.pattern:
            raise FedsimError(
                f"{first_name} ran with {_pattern_text(first)} and {name} with "
                f"{_pattern_text(run)}: merge only the shards of one run"
            )
    counts = {(run.shard.count if run.shard else 1) for _, run in runs}
    if len(counts) > 1:
        described = ", ".join(f"{n} ({_shard_text(r)})" for n, r in runs)
        raise FedsimError(f"shards of different splits: {described}")
    count = counts.pop()
    seen: dict[int, str] = {}
    for name, run in runs:
        index = run.shard.index if run.shard else 1
        if index in seen:
            raise FedsimError(
                f"overlapping shards: {seen[index]} and {name} are both {_shard_text(run)}"
            )
        seen[index] = name
    owner: dict[str, str] = {}
    for name, run in runs:
        for lab in run.labs:
            if lab.id in owner:
                raise FedsimError(
                    f"overlapping shards: lab {lab.id} is in {owner[lab.id]} and {name}"
                )
            owner[lab.id] = name
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]
    if missing:
        raise FedsimError(
            f"shard {', '.join(missing)} missing: give the JSON of every shard "
            f"(a merge of {len(runs)} of {count} would hide the labs that did not run)"
        )
    order = {ident: n for n, ident in enumerate(first.catalogue.ids)}
    labs = sorted(
        (lab for _, run in runs for lab in run.labs), key=lambda lab: order.get(lab.id, -1)
    )
    merged = tuple(f"{_index(run)}/{count}" for _, run in sorted(runs, key=lambda r: _index(r[1])))
    return RunResults(
        catalogue=first.catalogue,
        shard=None,
        pattern=first.pattern,
        labs=tuple(labs),
        merged=merged if count > 1 else (),
    )


def _pattern_text(run: RunResults) -> str:
    return "no -k" if run.pattern is None else f"-k {run.pattern!r}"


def _index(run: RunResults) -> int:
    return run.shard.index if run.shard else 1


def _shard_text(run: RunResults) -> str:
    return f"shard {run.shard}" if run.shard else "the whole catalogue"


__all__ = ["FORMAT", "VERSION", "RunResults", "load_results", "merge_results", "results_json"]
