// Azure Cache for Redis: the replicas' shared call state (CALLBRIDGE_REDIS_URL), TLS only.
// Its connection string (with the access key) goes to Key Vault (keyvault.bicep).
param location string
param tags object
param token string

resource redis 'Microsoft.Cache/redis@2024-03-01' = {
  // checkov:skip=CKV_AZURE_89: the container apps environment has no virtual network here (docs/deploy.md, "Network"); access needs the key, TLS 1.2 only
  name: 'redis-${token}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'Standard', family: 'C', capacity: 0 } // two nodes with replication, 250 MB
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    redisVersion: '6'
  }
}

output name string = redis.name
