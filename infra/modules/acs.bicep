// Azure Communication Services: a new resource, or an existing one by name. The service
// calls Call Automation with its managed identity (CALLBRIDGE_ACS_CONNECTION is the endpoint
// alone), which needs Contributor on this resource and nothing wider.
param tags object
param token string
param existingName string
param dataLocation string
param principalId string

var contributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b24988ac-6180-42a0-ab88-20f7382dd24c')

resource created 'Microsoft.Communication/communicationServices@2023-04-01' = if (empty(existingName)) {
  name: 'acs-${token}'
  location: 'global'
  tags: tags
  properties: { dataLocation: dataLocation }
}

// The one used from here on: the new resource or the existing one.
resource acs 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: empty(existingName) ? 'acs-${token}' : existingName
  dependsOn: [created]
}

resource callAutomation 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(acs.id, principalId, contributor)
  scope: acs
  properties: {
    roleDefinitionId: contributor
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output id string = acs.id
output name string = acs.name
output endpoint string = 'https://${acs.properties.hostName}/'
// The audience of the JWTs ACS puts on callbacks and the media socket.
output immutableResourceId string = acs.properties.immutableResourceId
