// The service's one identity: ACS (Call Automation), Voice Live / Azure OpenAI, Key Vault
// references and the image pull all use it (AZURE_CLIENT_ID tells DefaultAzureCredential).
param location string
param tags object
param token string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-callbridge-${token}'
  location: location
  tags: tags
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
