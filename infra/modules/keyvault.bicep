// Key Vault: the service's secrets. The container app references them by URL with its
// identity ("Key Vault Secrets User"), so they never sit in the app's settings.
param location string
param tags object
param token string
param principalId string
@secure()
@description('{ items: [{ name, value }] }: the secrets to store')
param secrets object
param redisName string

var secretsUser = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')

resource redis 'Microsoft.Cache/redis@2024-03-01' existing = {
  name: redisName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Container Apps without a virtual network reach the vault over its public endpoint (docs/deploy.md, "Network"); RBAC decides who reads
  // checkov:skip=CKV_AZURE_189: as above: public network access, RBAC only
  name: 'kv-${token}'
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }
}

resource given 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for secret in secrets.items: {
    // checkov:skip=CKV_AZURE_41: rotated by `azd provision` with new values, no fixed expiry (docs/deploy.md, "Secrets")
    parent: vault
    name: secret.name
    properties: { value: secret.value, contentType: 'text/plain' }
  }
]

resource redisUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: follows the Redis access key; no fixed expiry
  parent: vault
  name: 'redis-url'
  properties: {
    value: 'rediss://:${redis.listKeys().primaryKey}@${redis.properties.hostName}:${redis.properties.sslPort}/0'
    contentType: 'text/plain'
  }
}

resource read 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, secretsUser)
  scope: vault
  properties: {
    roleDefinitionId: secretsUser
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output uri string = vault.properties.vaultUri
output name string = vault.name
