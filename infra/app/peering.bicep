// Peer Tandem's network with one ANQ network, both directions; deployed to the ANQ network's resource group.
@description('Resource ID of Tandem\'s virtual network.')
param localVnetId string

@description('Resource ID of the virtual network that holds an ANQ cluster\'s private addresses.')
param remoteVnetId string

module local 'peering-link.bicep' = {
  name: 'tandem-to-${last(split(remoteVnetId, '/'))}'
  scope: resourceGroup(split(localVnetId, '/')[2], split(localVnetId, '/')[4])
  params: {
    fromVnetName: last(split(localVnetId, '/'))
    toVnetId: remoteVnetId
  }
}

module remote 'peering-link.bicep' = {
  name: '${last(split(remoteVnetId, '/'))}-to-tandem'
  params: {
    fromVnetName: last(split(remoteVnetId, '/'))
    toVnetId: localVnetId
  }
}
