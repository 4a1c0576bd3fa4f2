// Azure Container Apps: the environment (logs to Log Analytics) and the callbridge app.
// At least two replicas, a scale rule on concurrent calls, liveness on /healthz, readiness
// on /readyz, and no session affinity (any replica may get any request of a call: the
// replicas share call state through Redis).
param location string
param tags object
param token string
@description('empty: a placeholder image until azd deploys callbridge')
param image string
param identityId string
param identityClientId string
param registryServer string
param logAnalyticsName string
param appInsightsConnectionString string
param keyVaultUri string
param acsEndpoint string
param acsImmutableId string
param agent string
param aiEndpoint string
param voiceLiveModel string
param entraTenantId string
param entraAppId string
param minReplicas int
param maxReplicas int
param callsPerReplica int

var port = 8080
// Until azd has pushed the image: a public sample that listens on 8080 too, so the default
// TCP probes pass; the second provision (infra/hooks/postdeploy.sh) brings the HTTP probes.
var placeholder = 'mcr.microsoft.com/dotnet/samples:aspnetapp'
var real = !empty(image)
var drainSeconds = 20
// What Event Grid's token must carry (infra/hooks/preprovision.sh gives Event Grid the role).
var webhookRole = 'AzureEventGridSecureWebhookSubscriber'

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: 'cae-${token}'
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
    workloadProfiles: [{ name: 'Consumption', workloadProfileType: 'Consumption' }]
  }
}

var name = 'ca-callbridge-${take(token, 12)}'
var url = 'https://${name}.${environment.properties.defaultDomain}'

var secretNames = ['eventgrid-secret', 'signing-key', 'admin-token', 'database-url', 'redis-url']

var entraSettings = [
  { name: 'CALLBRIDGE_EVENTGRID_ENTRA_TENANT_ID', value: entraTenantId }
  { name: 'CALLBRIDGE_EVENTGRID_ENTRA_AUDIENCE', value: '${entraAppId},api://${entraAppId}' }
  { name: 'CALLBRIDGE_EVENTGRID_ENTRA_ROLE', value: webhookRole }
]
var entraEnv = empty(entraAppId) ? [] : entraSettings

var voiceLiveSettings = [
  { name: 'CALLBRIDGE_VOICELIVE_ENDPOINT', value: aiEndpoint }
  { name: 'CALLBRIDGE_VOICELIVE_AUTH', value: 'entra' }
  { name: 'CALLBRIDGE_VOICELIVE_MODEL', value: voiceLiveModel }
]
var openAiSettings = [
  { name: 'CALLBRIDGE_OPENAI_BASE_URL', value: '${replace(aiEndpoint, '.services.ai.azure.com', '.openai.azure.com')}/openai/v1' }
  { name: 'CALLBRIDGE_OPENAI_AUTH', value: 'entra' }
]
var aiEnv = agent == 'voicelive' ? voiceLiveSettings : (agent == 'openai' ? openAiSettings : [])

var baseEnv = [
  { name: 'CALLBRIDGE_HOST', value: '0.0.0.0' }
  { name: 'CALLBRIDGE_PORT', value: string(port) }
  { name: 'CALLBRIDGE_PUBLIC_URL', value: url }
  // The endpoint alone: Call Automation with the managed identity (Entra ID).
  { name: 'CALLBRIDGE_ACS_CONNECTION', value: acsEndpoint }
  { name: 'CALLBRIDGE_ACS_JWKS_URL', value: 'https://acscallautomation.communication.azure.com/calling/keys' }
  { name: 'CALLBRIDGE_ACS_JWT_AUDIENCE', value: acsImmutableId }
  { name: 'CALLBRIDGE_AGENT', value: agent }
  { name: 'CALLBRIDGE_LOG_JSON', value: 'true' }
  { name: 'CALLBRIDGE_MAX_CALLS', value: string(callsPerReplica + 10) }
  { name: 'CALLBRIDGE_DRAIN_TIMEOUT_S', value: string(drainSeconds) }
  { name: 'CALLBRIDGE_EVENTGRID_SECRET', secretRef: 'eventgrid-secret' }
  { name: 'CALLBRIDGE_SIGNING_KEY', secretRef: 'signing-key' }
  { name: 'CALLBRIDGE_ADMIN_TOKEN', secretRef: 'admin-token' }
  { name: 'CALLBRIDGE_DATABASE_URL', secretRef: 'database-url' }
  { name: 'CALLBRIDGE_REDIS_URL', secretRef: 'redis-url' }
  { name: 'AZURE_CLIENT_ID', value: identityClientId } // DefaultAzureCredential: this identity
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
]
var env = concat(baseEnv, entraEnv, aiEnv)

var probes = [
  {
    type: 'Startup' // the offline models load before the first call
    httpGet: { path: '/healthz', port: port }
    periodSeconds: 2
    failureThreshold: 60
    timeoutSeconds: 2
  }
  {
    type: 'Liveness'
    httpGet: { path: '/healthz', port: port }
    periodSeconds: 10
    failureThreshold: 3
    timeoutSeconds: 3
  }
  {
    type: 'Readiness' // 503 while draining: no new calls to this replica
    httpGet: { path: '/readyz', port: port }
    periodSeconds: 3
    failureThreshold: 1
    successThreshold: 1
    timeoutSeconds: 2
  }
]

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'callbridge' })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    managedEnvironmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: port
        transport: 'auto' // HTTP/1.1 with WebSocket upgrade for the media socket
        allowInsecure: false
        stickySessions: { affinity: 'none' }
      }
      registries: [{ server: registryServer, identity: identityId }]
      secrets: [
        for secret in secretNames: {
          name: secret
          keyVaultUrl: '${keyVaultUri}secrets/${secret}'
          identity: identityId
        }
      ]
    }
    template: {
      // Longer than the drain: the calls hear the shutdown notice and end before SIGKILL.
      terminationGracePeriodSeconds: drainSeconds + 10
      containers: [
        {
          name: 'callbridge'
          image: real ? image : placeholder
          resources: { cpu: json('2.0'), memory: '4Gi' }
          env: env
          probes: real ? probes : []
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            // Each live call holds one media WebSocket, an HTTP request in flight for the
            // whole call: concurrent requests per replica ~ concurrent calls per replica.
            name: 'concurrent-calls'
            http: { metadata: { concurrentRequests: string(callsPerReplica) } }
          }
        ]
      }
    }
  }
}

output name string = app.name
output url string = url
output environmentName string = environment.name
