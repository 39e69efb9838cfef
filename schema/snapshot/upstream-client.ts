/**
 * What a gateway declares to upstream servers at initialize: in the data plane's upstream
 * sessions (which relay these requests to the clients that declared them) and in the
 * control plane's feature discovery alike. Some servers offer a tool only to clients with a
 * capability (a tool that asks the user through elicitation, one that samples); discovery
 * must see what the gateway's sessions see, or such a tool is never discovered, so never
 * provisioned, pinned or reviewed, and every call to it is refused. Both elicitation modes:
 * the data plane relays each to the clients that declared it (URL mode to those that
 * declared `elicitation.url`) and refuses it to the others.
 */
export const UPSTREAM_CLIENT_CAPABILITIES = Object.freeze({ sampling: {}, elicitation: { form: {}, url: {} }, roots: {} });
