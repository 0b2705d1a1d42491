// Private endpoints for Tandem's storage (blob, queue, table) and its Event Grid topic, with their private DNS
// zones linked to Tandem's virtual network, so both can turn public network access off (as the Flex Consumption
// azd templates do with vnetEnabled). The function app reaches them through its virtual network integration.
@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Subnet the private endpoints get their addresses from.')
param subnetId string

@description('Virtual network the private DNS zones are linked to (the one the function app integrates with).')
param vnetId string

@description('Name of the storage account.')
param storageAccountName string

@description('Name of Tandem\'s Event Grid topic.')
param topicName string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource topic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: topicName
}

var endpoints = [
  {
    name: 'blob'
    zone: 'privatelink.blob.${environment().suffixes.storage}'
    target: account.id
  }
  {
    name: 'queue'
    zone: 'privatelink.queue.${environment().suffixes.storage}'
    target: account.id
  }
  {
    name: 'table'
    zone: 'privatelink.table.${environment().suffixes.storage}'
    target: account.id
  }
  {
    name: 'topic'
    zone: 'privatelink.eventgrid.azure.net'
    target: topic.id
  }
]

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for e in endpoints: {
  name: e.zone
  location: 'global'
  tags: tags
}]

resource links 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (e, i) in endpoints: {
  parent: zones[i]
  name: 'link-${e.name}'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnetId
    }
  }
}]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-01-01' = [for e in endpoints: {
  name: 'pe-${e.name}-${uniqueString(e.target)}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'pe-${e.name}'
        properties: {
          privateLinkServiceId: e.target
          groupIds: [
            e.name
          ]
        }
      }
    ]
  }
}]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-01-01' = [for (e, i) in endpoints: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace(e.zone, '.', '-')
        properties: {
          privateDnsZoneId: zones[i].id
        }
      }
    ]
  }
}]
