// Azure Database for PostgreSQL flexible server: the call records of every replica
// (CALLBRIDGE_DATABASE_URL, in Key Vault). TLS is required by the server.
param location string
param tags object
param token string
@secure()
param administratorPassword string

var administratorLogin = 'callbridge'
var databaseName = 'callbridge'

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  // checkov:skip=CKV_AZURE_136: geo-redundant backup doubles the storage cost; turn it on (backup.geoRedundantBackup) for production
  name: 'psql-${token}'
  location: location
  tags: tags
  sku: { name: 'Standard_B1ms', tier: 'Burstable' }
  properties: {
    version: '16'
    administratorLogin: administratorLogin
    administratorLoginPassword: administratorPassword
    storage: { storageSizeGB: 32, autoGrow: 'Enabled' }
    backup: { backupRetentionDays: 7, geoRedundantBackup: 'Disabled' }
    highAvailability: { mode: 'Disabled' }
    authConfig: { activeDirectoryAuth: 'Disabled', passwordAuth: 'Enabled' }
    network: { publicNetworkAccess: 'Enabled' }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: { charset: 'UTF8', collation: 'en_US.utf8' }
}

// Container Apps without a virtual network reach the server through Azure's outbound
// addresses: "allow Azure services" (0.0.0.0). docs/deploy.md, "Network".
resource azureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAzureServices'
  properties: { startIpAddress: '0.0.0.0', endIpAddress: '0.0.0.0' }
}

resource requireTls 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'require_secure_transport'
  properties: { value: 'on', source: 'user-override' }
}

output fqdn string = server.properties.fullyQualifiedDomainName
output administratorLogin string = administratorLogin
output databaseName string = database.name
