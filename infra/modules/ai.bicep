// Azure AI Services (Foundry) for Voice Live or Azure OpenAI realtime: Entra ID only (no
// keys), the service's identity is a "Cognitive Services User".
param location string
param tags object
param token string
param principalId string

var cognitiveServicesUser = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'a97b65f3-24c7-4388-baec-2e87135dc908')

resource ai 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134: no virtual network here (docs/deploy.md, "Network"); local keys are off, Entra ID only
  name: 'ai-${token}'
  location: location
  tags: tags
  kind: 'AIServices'
  sku: { name: 'S0' }
  identity: { type: 'SystemAssigned' }
  properties: {
    customSubDomainName: 'ai-${token}' // Entra ID needs a custom subdomain
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource user 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(ai.id, principalId, cognitiveServicesUser)
  scope: ai
  properties: {
    roleDefinitionId: cognitiveServicesUser
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = 'https://${ai.properties.customSubDomainName}.services.ai.azure.com'
