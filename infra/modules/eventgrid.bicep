// Event Grid: the system topic of the ACS resource and the IncomingCall subscription to the
// service's webhook. With an Entra app registration, Event Grid sends a bearer token for it
// with every delivery (https://learn.microsoft.com/azure/event-grid/secure-webhook-delivery);
// without one, the shared secret rides in the URL's `key` query parameter.
param tags object
param token string
param acsId string
param existingSystemTopicName string
param createSubscription bool
@secure()
param webhookUrl string
param entraTenantId string
param entraAppId string

resource created 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (empty(existingSystemTopicName)) {
  name: 'evgt-acs-${token}'
  location: 'global'
  tags: tags
  properties: {
    source: acsId
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: empty(existingSystemTopicName) ? 'evgt-acs-${token}' : existingSystemTopicName
  dependsOn: [created]
}

var entraAuth = {
  azureActiveDirectoryTenantId: entraTenantId
  azureActiveDirectoryApplicationIdOrUri: entraAppId
}
var entra = empty(entraAppId) ? {} : entraAuth
var webhook = {
  endpointUrl: webhookUrl
  maxEventsPerBatch: 1
  preferredBatchSizeInKilobytes: 64
}

resource incomingCall 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (createSubscription) {
  parent: topic
  name: 'callbridge-incoming-call'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: union(webhook, entra)
    }
    filter: { includedEventTypes: ['Microsoft.Communication.IncomingCall'] }
    eventDeliverySchema: 'EventGridSchema'
    // A caller rings for about 30 s: later retries would answer a call that is gone.
    retryPolicy: { maxDeliveryAttempts: 5, eventTimeToLiveInMinutes: 1 }
  }
}

output systemTopicName string = topic.name
output subscriptionCreated bool = createSubscription
