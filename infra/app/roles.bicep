// Tandem's custom roles: exactly the ARM actions Tandem calls, split by where they apply. The test
// tests/unit/test_infra.py checks these lists against every ARM call Tandem made in the test suite, both ways.
targetScope = 'subscription'

@description('Name of the azd environment; part of the role names, which are unique in a tenant.')
param environmentName string

@description('Subscriptions of the AVD and VM resource groups; the roles are assignable there (and assigned only on those groups).')
param subscriptionIds array

// Host pools, session hosts and user sessions: read the pool, drain and undrain hosts, list sessions, warn users
// (send message) and log them off, and see whether a native scaling plan is enabled on the pool (Tandem never
// writes one). Assigned on each region's AVD resource group.
var sessionHostOperatorActions = [
  'Microsoft.DesktopVirtualization/hostpools/read'
  'Microsoft.DesktopVirtualization/scalingplans/read'
  'Microsoft.DesktopVirtualization/hostpools/sessionhosts/read'
  'Microsoft.DesktopVirtualization/hostpools/sessionhosts/write'
  'Microsoft.DesktopVirtualization/hostpools/sessionhosts/usersessions/read'
  'Microsoft.DesktopVirtualization/hostpools/sessionhosts/usersessions/delete'
  'Microsoft.DesktopVirtualization/hostpools/sessionhosts/usersessions/sendMessage/action'
]

// Session host VMs: read them (tags) and the power state of those whose AVD status leaves it open (instance view),
// start, deallocate, and Run Command (Tandem runs one fixed, read-only script:
// the FSLogix profile settings a failover checks). Assigned only on each region's session host VM resource groups.
var vmPowerOperatorActions = [
  'Microsoft.Compute/virtualMachines/read'
  'Microsoft.Compute/virtualMachines/instanceView/read'
  'Microsoft.Compute/virtualMachines/start/action'
  'Microsoft.Compute/virtualMachines/deallocate/action'
  'Microsoft.Compute/virtualMachines/runCommand/action'
]

// Moving users between regions: read, create and delete role assignments. Assigned only on the listed application
// groups, with a condition that allows nothing but Desktop Virtualization User for users and groups.
var accessDelegateActions = [
  'Microsoft.Authorization/roleAssignments/read'
  'Microsoft.Authorization/roleAssignments/write'
  'Microsoft.Authorization/roleAssignments/delete'
]

var scopes = [for id in subscriptionIds: '/subscriptions/${id}']
var assignableScopes = union(scopes, scopes) // without repeats

resource sessionHostOperator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'tandem-session-host-operator')
  properties: {
    roleName: 'Tandem Session Host Operator (${environmentName})'
    description: 'Tandem autoscale and failover: read host pools, drain session hosts, message and log off user sessions.'
    type: 'CustomRole'
    permissions: [
      {
        actions: sessionHostOperatorActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

resource vmPowerOperator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'tandem-vm-power-operator')
  properties: {
    roleName: 'Tandem VM Power Operator (${environmentName})'
    description: 'Tandem autoscale and failover: read, start and deallocate session host virtual machines; read their FSLogix settings with Run Command.'
    type: 'CustomRole'
    permissions: [
      {
        actions: vmPowerOperatorActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

resource accessDelegate 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'tandem-access-delegate')
  properties: {
    roleName: 'Tandem Desktop Access Delegate (${environmentName})'
    description: 'Tandem failover: move Desktop Virtualization User assignments between application groups (assigned with a condition).'
    type: 'CustomRole'
    permissions: [
      {
        actions: accessDelegateActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

output sessionHostOperatorRoleId string = sessionHostOperator.id
output vmPowerOperatorRoleId string = vmPowerOperator.id
output accessDelegateRoleId string = accessDelegate.id
