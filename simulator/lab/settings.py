"""The policy's view of a lab: the one place an :class:`EdgeSettings` is built from ``[edge]``.

``fedsim serve`` (through :func:`simulator.edge.app.edge_settings`), ``fedsim run``
and ``fedsim check --lab`` all call :func:`edge_settings`, so the Edge and the
preflight decide with the same settings, profile and rules included; the same
holds for the Skype users behind it (:func:`user_directory`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from simulator.lab.model import EdgeConfig, Lab, UserSpec
from simulator.policy import AllowedDomain, EdgeSettings, profile, with_rules
from simulator.skype.call import CallSettings
from simulator.skype.media import DEFAULT_CODECS, MediaEncryption, MediaSettings, RefusalForm
from simulator.skype.presence import availability
from simulator.skype.user import Directory, UserProfile


def edge_settings(lab: Lab) -> EdgeSettings:
    """The policy settings of ``lab``'s Edge (profile defaults already applied by the loader)."""
    return settings_from_config(lab.edge)


def settings_from_config(edge: EdgeConfig) -> EdgeSettings:
    """The policy settings of one ``[edge]`` table."""
    return EdgeSettings(
        fqdn=edge.fqdn,
        domains=tuple(d.lower() for d in edge.domains),
        federation=edge.federation,
        blocked=edge.blocked,
        allowed=tuple(
            AllowedDomain(domain=a.domain, proxy_fqdn=a.proxy_fqdn) for a in edge.allowed
        ),
        hosted=edge.hosted,
        rules=edge.rules,
        server_header=edge.server_header,
        profile=edge.profile,
        hosting_providers=edge.hosting_providers,
        tenant=edge.tenant,
    )


def with_profile(edge: EdgeConfig, name: str, rules: dict[str, object]) -> EdgeConfig:
    """``edge`` as another profile would configure it, then with some rules changed.

    What ``fedsim check --profile P --rule K=V`` applies to a lab: the profile's
    TLS, ``Server`` header, trust rule and rule defaults replace the lab's.

    Raises:
        ValueError: an unknown profile or rule (with a "did you mean"), a bad value.
    """
    product = profile(name)
    return replace(
        edge,
        profile=product.name,
        tls=product.name,
        hosted=product.public_ca_only,
        server_header=product.server_header,
        rules=with_rules(product.rules, rules),
    )


def user_directory(lab: Lab) -> Directory:
    """The Skype users of ``lab``'s Edge: who exists and what each one does.

    ``fedsim serve`` answers with it and ``fedsim check`` predicts with it, so
    the two decide alike (:func:`simulator.skype.user.answer_status`).
    """
    return directory_from_config(lab.edge)


def _profile(edge: EdgeConfig, spec: UserSpec | None) -> UserProfile:
    spec = spec or UserSpec()
    encryption = spec.media_encryption or edge.media_encryption
    media = MediaSettings(
        encryption=cast(MediaEncryption, encryption),
        codecs=spec.codecs or DEFAULT_CODECS,
        refusal=cast(RefusalForm, edge.media_refusal),
    )
    call = CallSettings(
        t1=edge.timers.t1,
        t2=edge.timers.t2,
        ignore_ack=spec.ignore_ack,
        hangup_after=spec.hangup_after,
        media_failure_after=spec.media_failure_after,
    )
    return UserProfile(
        answer=spec.answer,
        availability=availability(spec.presence),
        media=media,
        call=call,
    )


def directory_from_config(edge: EdgeConfig) -> Directory:
    """The users of one ``[edge]`` table (:func:`user_directory`)."""
    return Directory(
        settings=settings_from_config(edge),
        users={name: _profile(edge, spec) for name, spec in edge.users.items()},
        default=_profile(edge, None),
        listed_only=edge.users_exist == "listed",
    )
