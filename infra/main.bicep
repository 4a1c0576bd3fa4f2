// callbridge on Azure: `azd up` (azure.yaml). Every resource and role is explained in
// docs/deploy.md. Subscription scope: the template makes its own resource group.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name: names and tags every resource')
param environmentName string

@minLength(1)
@description('Region of the resource group and the regional resources')
param location string

@description('The callbridge image (azd sets it after the first deploy); empty: a placeholder until then')
param callbridgeImage string = ''

@allowed(['local', 'voicelive', 'openai', 'echo'])
@description('The agent backend (CALLBRIDGE_AGENT)')
param agent string = 'local'

@description('Voice Live model (CALLBRIDGE_VOICELIVE_MODEL) when agent is voicelive')
param voiceLiveModel string = 'gpt-realtime'

@description('Name of an existing ACS resource to use; empty: a new one is created')
param existingAcsName string = ''

@description('Resource group of that existing ACS resource; empty: this deployment\'s')
param existingAcsResourceGroup string = ''

@description('An Event Grid system topic that already exists on that ACS resource (one per resource is allowed)')
param existingSystemTopicName string = ''

@description('ACS data location (where call data at rest stays)')
param acsDataLocation string = 'United States'

@description('Application (client) id of the Entra app registration Event Grid gets tokens for (infra/hooks/preprovision.sh makes it); empty: the shared secret in the webhook URL instead')
param webhookEntraAppId string = ''

@description('Create the IncomingCall subscription (needs the service running: the validation handshake happens at creation)')
param createEventSubscription bool = false

@minValue(2)
@description('Replicas always running (calls survive a replica restart only if another one is up)')
param minReplicas int = 2

@minValue(2)
param maxReplicas int = 10

@minValue(1)
@description('Calls per replica before the scale rule adds one (each call holds one media WebSocket)')
param callsPerReplica int = 40

@secure()
@description('Shared secret for Event Grid deliveries (preprovision.sh generates it)')
param eventGridSecret string

@secure()
@description('Key of the per-call URL tokens, the same on every replica (preprovision.sh)')
param signingKey string

@secure()
@description('Bearer token of the records API and console (preprovision.sh)')
param adminToken string

@secure()
@description('PostgreSQL administrator password (preprovision.sh)')
param postgresPassword string

var tags = { 'azd-env-name': environmentName }
var token = toLower(uniqueString(subscription().id, environmentName, location))

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: { location: location, tags: tags, token: token }
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: { location: location, tags: tags, token: token }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    principalId: identity.outputs.principalId
  }
}

module acs 'modules/acs.bicep' = {
  name: 'acs'
  scope: empty(existingAcsResourceGroup) ? rg : resourceGroup(existingAcsResourceGroup)
  params: {
    tags: tags
    token: token
    existingName: existingAcsName
    dataLocation: acsDataLocation
    principalId: identity.outputs.principalId
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  scope: rg
  params: { location: location, tags: tags, token: token }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    administratorPassword: postgresPassword
  }
}

module ai 'modules/ai.bicep' = if (agent == 'voicelive' || agent == 'openai') {
  name: 'ai'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    principalId: identity.outputs.principalId
    secrets: {
      items: [
        { name: 'eventgrid-secret', value: eventGridSecret }
        { name: 'signing-key', value: signingKey }
        { name: 'admin-token', value: adminToken }
        // Password auth for PostgreSQL (asyncpg); TLS required by the server.
        {
          name: 'database-url'
          value: 'postgresql+asyncpg://${postgres.outputs.administratorLogin}:${postgresPassword}@${postgres.outputs.fqdn}:5432/${postgres.outputs.databaseName}?ssl=require'
        }
      ]
    }
    redisName: redis.outputs.name
  }
}

module app 'modules/app.bicep' = {
  name: 'app'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    image: callbridgeImage
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    registryServer: registry.outputs.loginServer
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    keyVaultUri: keyVault.outputs.uri
    acsEndpoint: acs.outputs.endpoint
    acsImmutableId: acs.outputs.immutableResourceId
    agent: agent
    aiEndpoint: (agent == 'voicelive' || agent == 'openai') ? ai.outputs.endpoint : ''
    voiceLiveModel: voiceLiveModel
    entraTenantId: empty(webhookEntraAppId) ? '' : tenant().tenantId
    entraAppId: webhookEntraAppId
    minReplicas: minReplicas
    maxReplicas: maxReplicas
    callsPerReplica: callsPerReplica
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: empty(existingAcsResourceGroup) ? rg : resourceGroup(existingAcsResourceGroup)
  params: {
    tags: tags
    token: token
    acsId: acs.outputs.id
    existingSystemTopicName: existingSystemTopicName
    createSubscription: createEventSubscription && !empty(callbridgeImage)
    webhookUrl: empty(webhookEntraAppId) ? '${app.outputs.url}/acs/incoming?key=${eventGridSecret}' : '${app.outputs.url}/acs/incoming'
    entraTenantId: empty(webhookEntraAppId) ? '' : tenant().tenantId
    entraAppId: webhookEntraAppId
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_ENVIRONMENT_NAME string = app.outputs.environmentName
output SERVICE_CALLBRIDGE_NAME string = app.outputs.name
output ACS_NAME string = acs.outputs.name
output ACS_RESOURCE_GROUP string = empty(existingAcsResourceGroup) ? rg.name : existingAcsResourceGroup
output EVENTGRID_SYSTEM_TOPIC string = eventGrid.outputs.systemTopicName
output EVENTGRID_SUBSCRIPTION_CREATED bool = eventGrid.outputs.subscriptionCreated
output CALLBRIDGE_URL string = app.outputs.url
output CALLBRIDGE_WEBHOOK_URL string = '${app.outputs.url}/acs/incoming'
output CALLBRIDGE_CONSOLE_URL string = '${app.outputs.url}/console'
