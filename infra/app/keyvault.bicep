// Key Vault for the Qumulo credentials: RBAC only, purge protection on, and a firewall that admits Tandem's subnet
// (service endpoint) and any addresses the administrator lists.
@description('Name of the vault.')
param name string

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Tandem\'s integration subnet.')
param subnetId string

@description('Extra public addresses or ranges allowed in (e.g. the administrator\'s, to set the credentials).')
param allowedIps array

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'None'
      defaultAction: 'Deny'
      virtualNetworkRules: [
        {
          id: subnetId
          ignoreMissingVnetServiceEndpoint: false
        }
      ]
      ipRules: [for address in allowedIps: {
        value: address
      }]
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
