// The subnet Tandem's function app integrates with, to reach the ANQ clusters' private addresses: a new virtual
// network (peered with the ANQ networks by peering.bicep), or an existing subnet that already reaches them.
@description('Name of the virtual network to create.')
param name string

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('An existing subnet to use instead; empty to create the network.')
param existingSubnetId string

@description('Address space of the new network.')
param addressPrefix string

@description('Address range of the integration subnet.')
param subnetPrefix string

@description('Address range of the subnet for private endpoints (storage, the Event Grid topic).')
param privateEndpointSubnetPrefix string

@description('With an existing integration subnet: an existing subnet (not delegated) for the private endpoints.')
param existingPrivateEndpointSubnetId string = ''

var create = empty(existingSubnetId)

resource nsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = if (create) {
  name: 'nsg-${name}'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = if (create) {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'snet-functions'
        properties: {
          addressPrefix: subnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          // Key Vault is reached over this subnet's service endpoint; its firewall admits only this subnet.
          serviceEndpoints: [
            {
              service: 'Microsoft.KeyVault'
            }
          ]
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'snet-private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

output vnetId string = create ? vnet.id : ''
output subnetId string = create ? '${vnet.id}/subnets/snet-functions' : existingSubnetId
// the network the private DNS zones are linked to: the new one, or the one holding the existing subnet
output linkedVnetId string = create ? vnet.id : split(existingSubnetId, '/subnets/')[0]
output privateEndpointSubnetId string = create ? '${vnet.id}/subnets/snet-private-endpoints' : existingPrivateEndpointSubnetId
