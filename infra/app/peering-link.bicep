// One direction of a virtual network peering.
@description('Name of the virtual network (in this resource group) the peering belongs to.')
param fromVnetName string

@description('Resource ID of the peered network.')
param toVnetId string

resource from 'Microsoft.Network/virtualNetworks@2024-01-01' existing = {
  name: fromVnetName
}

resource link 'Microsoft.Network/virtualNetworks/virtualNetworkPeerings@2024-01-01' = {
  parent: from
  name: 'peer-${last(split(toVnetId, '/'))}'
  properties: {
    remoteVirtualNetwork: {
      id: toVnetId
    }
    allowVirtualNetworkAccess: true
    allowForwardedTraffic: false
    allowGatewayTransit: false
    useRemoteGateways: false
  }
}
