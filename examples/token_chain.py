"""The four AAuth tokens, minted and verified locally (interop demo profile, surfaces 2-4).

An agent provider vouches for an agent's key (agent token); the person server names the
person to one resource (person token); the resource asks for authorization (resource token,
naming the person token by ``presented_jti``); the person server grants it (auth token).
Every token is verified the way its recipient would, with the issuers' public keys.

Run: ``python examples/token_chain.py``
"""

from __future__ import annotations

from aauth_agents import (
    PrivateKey,
    StaticIssuerKeys,
    mint_agent_token,
    mint_auth_token,
    mint_person_token,
    mint_resource_token,
    verify_agent_token,
    verify_auth_token,
    verify_person_token,
    verify_resource_token,
)

AP, PS, RESOURCE = "https://agent.example", "https://ps.example", "https://resource.example"


def main() -> None:
    provider, ps, resource, agent = (PrivateKey.generate() for _ in range(4))
    keys = StaticIssuerKeys(
        {
            (AP, "aauth-agent.json"): [provider.public_key],
            (PS, "aauth-person.json"): [ps.public_key],
            (RESOURCE, "aauth-resource.json"): [resource.public_key],
        }
    )

    agent_token = mint_agent_token(
        provider, iss=AP, sub="aauth:assistant@agent.example", cnf=agent.public_key, ps=PS
    )
    verified_agent = verify_agent_token(agent_token, keys=keys, signing_key=agent.public_key)
    print(f"agent token:    {verified_agent.sub} (provider {verified_agent.iss})")

    person_token = mint_person_token(
        ps,
        iss=PS,
        aud=RESOURCE,
        sub="8f14e45fceea167a",
        cnf=agent.public_key,
        not_after=verified_agent.exp,
    )
    person = verify_person_token(
        person_token, keys=keys, audience=RESOURCE, signing_key=agent.public_key
    )
    print(f"person token:   person {person.person} at {person.aud}")

    resource_token = mint_resource_token(
        resource,
        iss=RESOURCE,
        aud=PS,
        agent_jkt=agent.thumbprint(),
        scope="files.read",
        person=person,
    )
    request = verify_resource_token(
        resource_token, keys=keys, audience=PS, agent_jkt=agent.thumbprint()
    )
    print(f"resource token: scope {request.scope!r}, presented_jti {request.presented_jti}")

    auth_token = mint_auth_token(
        ps,
        iss=PS,
        aud=RESOURCE,
        ps=PS,
        sub=request.sub,
        cnf=agent.public_key,
        scope=request.scope,
        not_after=verified_agent.exp,
    )
    grant = verify_auth_token(
        auth_token, keys=keys, audience=RESOURCE, signing_key=agent.public_key
    )
    print(f"auth token:     scope {grant.scopes} for person {grant.person}")


if __name__ == "__main__":
    main()
