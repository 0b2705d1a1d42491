// One custom role for Tandem's identity on the resource group this module is deployed to.
@description('Resource ID of the role definition to assign.')
param roleDefinitionId string

@description('Object ID of Tandem\'s managed identity.')
param principalId string

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
