#!/usr/bin/env bash
# The docs Q&A example end to end, against a running `loom server` started from the
# repository's root with LOOM_SOURCES_ROOT set to it and the provider's key in its
# environment (see README.md here). Applies the provider and routes, builds the index, creates
# the two prompt versions, runs the flow once, and evaluates both variants with a gate.
#
#   PROVIDER_URL   OpenAI-compatible base URL (default https://api.openai.com/v1)
#   PROVIDER_KEY_ENV  the server's environment variable holding the key (default OPENAI_API_KEY)
#   CHAT_MODEL, EMBED_MODEL, JUDGE_MODEL  the provider's models (defaults gpt-4o-mini,
#                  text-embedding-3-small, and CHAT_MODEL)
#   LOOM, LOOM_SERVER  the loom binary and the server (defaults: loom, http://127.0.0.1:5000)
#   GATE           the evaluation's gate (default hit_rate=0.6)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
loom=${LOOM:-loom}
export LOOM_SERVER=${LOOM_SERVER:-http://127.0.0.1:5000}
url=${PROVIDER_URL:-https://api.openai.com/v1}
chat=${CHAT_MODEL:-gpt-4o-mini}
embed=${EMBED_MODEL:-text-embedding-3-small}
judge=${JUDGE_MODEL:-$chat}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/provider.yaml" <<YAML
kind: provider
name: llm
type: openai-compatible
base_url: $url
api_key_env: ${PROVIDER_KEY_ENV:-OPENAI_API_KEY}
YAML
cat > "$work/chat.yaml" <<YAML
kind: route
name: chat
targets: [{provider: llm, model: $chat}]
retries: 2
YAML
cat > "$work/judge.yaml" <<YAML
kind: route
name: judge
targets: [{provider: llm, model: $judge}]
retries: 2
YAML
cat > "$work/embed.yaml" <<YAML
kind: route
name: embed
task: embeddings
targets: [{provider: llm, model: $embed}]
YAML
for f in provider chat judge embed; do "$loom" apply -f "$work/$f.yaml"; done
"$loom" apply -f "$here/index.yaml"
"$loom" index build loom-docs

"$loom" prompt create docs-qa --alias production -m "answer from the context" --template \
  'Answer the question using only the context below. Name the file you used.

Context:
{{context}}

Question: {{question}}'
"$loom" prompt create docs-qa --alias candidate -m "shorter, cites every file" --template \
  'You answer questions about Loom. Be brief, and cite each file you use in brackets.
{{context}}

Q: {{question}}'

"$loom" flow run -f "$here/flow.yaml" --input question="When does a canary rollout roll back automatically?"
"$loom" eval run -f "$here/eval.yaml" --fail-under "${GATE:-hit_rate=0.6}"
