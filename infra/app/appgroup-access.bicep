// The delegation role on each listed application group, constrained to Desktop Virtualization User for users and
// groups: Tandem can move desktop access between regions and can grant nothing else, to no one else.
@description('Names of the application groups (in this resource group) whose assignments Tandem moves.')
param applicationGroups array

@description('Resource ID of the access delegate role.')
param roleDefinitionId string

@description('Object ID of Tandem\'s managed identity.')
param principalId string

var desktopVirtualizationUser = '1d18fff3-a72a-46b5-b4a9-0b38a3cd7e63'
var writeCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${desktopVirtualizationUser}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'User\', \'Group\'}))'
var deleteCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${desktopVirtualizationUser}} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'User\', \'Group\'}))'

resource groups 'Microsoft.DesktopVirtualization/applicationGroups@2024-04-03' existing = [for name in applicationGroups: {
  name: name
}]

resource delegation 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in applicationGroups: {
  name: guid(groups[i].id, principalId, roleDefinitionId)
  scope: groups[i]
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Tandem may assign or remove only Desktop Virtualization User, only for users and groups.'
    condition: '${writeCondition} AND ${deleteCondition}'
    conditionVersion: '2.0'
  }
}]
