"""The JSON API's response bodies: one pydantic model per body a route returns.

Each route of `<app>/api.py` names its model (`response=answers(Model)`), so
`/api/openapi.json` documents every body. The models only describe: each
field has the type the action already returns (an ISO 8601 string for a time,
never a datetime), so declaring them re-formats nothing and the bytes on the
wire stay what the actions make. Extra keys are forbidden: an action that
starts returning an undeclared key fails its route's tests instead of the key
being dropped in silence. No Django here (tests/test_layers.py).

By area: `common` (the base, the error body, shared shapes), `accounts`
(sign-in, the key directory), `departments` (members, room keys, the chain),
`threads` (threads, history, receipts, patients), `media` (uploads, the photo
library), `compliance` (cases, their audit and releases, legal holds), `oncall`
(on-call roles, their roster, roster imports), `advice` (advice requests).
"""
