"""The policy's view of a lab: the one place an :class:`EdgeSettings` is built from ``[edge]``.

``fedsim serve`` (through :func:`simulator.edge.app.edge_settings`), ``fedsim run``
and ``fedsim check --lab`` all call :func:`edge_settings`, so the Edge and the
preflight decide with the same settings, profile and rules included.
"""

from __future__ import annotations

from dataclasses import replace

from simulator.lab.model import EdgeConfig, Lab
from simulator.policy import AllowedDomain, EdgeSettings, profile, with_rules


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
