// The registry azd pushes the image to; the service's identity pulls it (no admin user).
param location string
param tags object
param token string
param principalId string

var acrPull = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_163: vulnerability scanning is Microsoft Defender for Containers, a subscription plan, not a registry setting
  // checkov:skip=CKV_AZURE_164: signed (trusted) images need the Premium tier; docs/deploy.md
  // checkov:skip=CKV_AZURE_165: geo-replication needs the Premium tier; one region here
  // checkov:skip=CKV_AZURE_166: image quarantine needs the Premium tier
  // checkov:skip=CKV_AZURE_167: untagged-manifest retention needs the Premium tier
  // checkov:skip=CKV_AZURE_139: azd pushes from the developer's machine: public network access
  // checkov:skip=CKV_AZURE_233: zone redundancy needs the Premium tier
  // checkov:skip=CKV_AZURE_237: dedicated data endpoints need the Premium tier
  name: 'cr${token}'
  location: location
  tags: tags
  sku: { name: 'Basic' }
  properties: {
    adminUserEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource pull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, acrPull)
  scope: registry
  properties: {
    roleDefinitionId: acrPull
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output loginServer string = registry.properties.loginServer
