#!/bin/sh
# azd preprovision hook (azure.yaml): the environment's secrets and the webhook's Entra app.
# Runs with the signed-in `az` account; docs/deploy.md explains each step.
set -eu

get() { azd env get-value "$1" 2>/dev/null || true; }
random() { python3 -c "import secrets; print(secrets.token_urlsafe($1))"; }

# 1. Secrets, generated once per azd environment and kept in it (.azure/<env>/.env on this
#    machine); the template puts them in Key Vault, the service reads them from there.
for pair in CALLBRIDGE_EVENTGRID_SECRET:24 CALLBRIDGE_SIGNING_KEY:32 CALLBRIDGE_ADMIN_TOKEN:24; do
    name=${pair%%:*}
    if [ -z "$(get "$name")" ]; then azd env set "$name" "$(random "${pair##*:}")" >/dev/null; fi
done
if [ -z "$(get POSTGRES_PASSWORD)" ]; then
    azd env set POSTGRES_PASSWORD "$(python3 -c 'import secrets; print(secrets.token_hex(24))')" >/dev/null
fi

# 2. Entra ID delivery authentication for the Event Grid webhook
#    (https://learn.microsoft.com/azure/event-grid/secure-webhook-delivery): an app
#    registration with the AzureEventGridSecureWebhookSubscriber app role, given to Event
#    Grid's service principal and to you (who creates the subscription). Skipped with
#    EVENTGRID_ENTRA=false; without the rights to register apps the shared secret is used.
if [ "$(get EVENTGRID_ENTRA)" = "false" ] || [ -n "$(get EVENTGRID_ENTRA_APP_ID)" ]; then
    exit 0
fi
EVENTGRID_APP_ID=4962773b-9cdb-44cf-a8bf-237846a00ab7  # Microsoft.EventGrid, first party
ROLE=AzureEventGridSecureWebhookSubscriber
ENV_NAME=$(get AZURE_ENV_NAME)
roles=$(mktemp)
cat >"$roles" <<JSON
[{"allowedMemberTypes": ["Application", "User"], "description": "Event Grid deliveries to callbridge",
  "displayName": "$ROLE", "isEnabled": true, "value": "$ROLE"}]
JSON
if ! app_id=$(az ad app create --display-name "callbridge-webhook-$ENV_NAME" \
        --app-roles "@$roles" --query appId -o tsv); then
    echo "preprovision: cannot register an Entra app: the webhook uses the shared secret" >&2
    rm -f "$roles"
    exit 0
fi
rm -f "$roles"
az ad app update --id "$app_id" --identifier-uris "api://$app_id"
app_sp=$(az ad sp show --id "$app_id" --query id -o tsv 2>/dev/null \
    || az ad sp create --id "$app_id" --query id -o tsv)
eg_sp=$(az ad sp show --id "$EVENTGRID_APP_ID" --query id -o tsv 2>/dev/null \
    || az ad sp create --id "$EVENTGRID_APP_ID" --query id -o tsv)
role_id=$(az ad app show --id "$app_id" --query "appRoles[?value=='$ROLE'].id" -o tsv)
me=$(az ad signed-in-user show --query id -o tsv 2>/dev/null || true)
for principal in "$eg_sp" $me; do
    az rest --method POST \
        --uri "https://graph.microsoft.com/v1.0/servicePrincipals/$app_sp/appRoleAssignedTo" \
        --body "{\"principalId\": \"$principal\", \"resourceId\": \"$app_sp\", \"appRoleId\": \"$role_id\"}" \
        >/dev/null
done
azd env set EVENTGRID_ENTRA_APP_ID "$app_id" >/dev/null
echo "preprovision: Event Grid authenticates to the webhook with Entra ID (app $app_id)"
