// The Event Grid topic Tandem publishes its own CloudEvents to (autoscale actions, snapshot alerts, failover
// stages). Keys are off: publishers sign in with Entra ID (Tandem's identity has EventGrid Data Sender).
@description('Name of the topic.')
param name string

@description('Region.')
param location string

@description('Tags.')
param tags object

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: 'Disabled' // published to through a private endpoint only (private-endpoints.bicep, or your own)
  }
}

output name string = topic.name
output endpoint string = topic.properties.endpoint
