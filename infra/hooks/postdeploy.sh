#!/bin/sh
# azd postdeploy hook (azure.yaml). The first `azd up` provisions before the image exists
# (a placeholder runs), then deploys it; this provisions once more so the app gets its
# settings and probes with the real image and the IncomingCall subscription is created
# against a live webhook (Event Grid validates it at creation). Later runs: nothing to do.
set -eu

if [ "$(azd env get-value EVENTGRID_CREATE_SUBSCRIPTION 2>/dev/null || true)" != "true" ]; then
    azd env set EVENTGRID_CREATE_SUBSCRIPTION true >/dev/null
    azd provision --no-prompt
fi
echo "webhook: $(azd env get-value CALLBRIDGE_WEBHOOK_URL)"
echo "console: $(azd env get-value CALLBRIDGE_CONSOLE_URL)  (token: azd env get-value CALLBRIDGE_ADMIN_TOKEN)"
