// Event Grid delivery to Tandem's functions: Resource Health for the whole subscription (a system topic at
// subscription scope), filtered per function to the resources it acts on, and Tandem's own failover events.
@description('Name of the Resource Health system topic.')
param name string

@description('Tags.')
param tags object

@description('Resource ID of the function app.')
param functionAppId string

@description('Tandem\'s own Event Grid topic.')
param topicName string

@description('Resource ID prefixes of the session host VMs, one per VM resource group.')
param vmPrefixes array

var availabilityChanged = 'Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged'
var annotated = 'Microsoft.ResourceNotifications.HealthResources.ResourceAnnotated'
var retry = {
  maxDeliveryAttempts: 30
  eventTimeToLiveInMinutes: 60
}

resource health 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: 'global'
  tags: tags
  properties: {
    source: subscription().id
    topicType: 'Microsoft.ResourceNotifications.HealthResources'
  }
}

// failover_events: a share of a region's session host VMs becoming unavailable, not by the customer's own hand
// (the annotations say which), proposes a failover. The topic speaks for VMs only; ANQ is watched by Tandem.
resource healthToFailover 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: health
  name: 'failover-events'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/failover_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        availabilityChanged
        annotated
      ]
      advancedFilters: [
        {
          operatorType: 'StringBeginsWith'
          key: 'subject'
          values: vmPrefixes
        }
      ]
    }
    retryPolicy: retry
  }
}

// autoscale_events: a session host VM becoming unavailable is replaced at once.
resource healthToAutoscale 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: health
  name: 'autoscale-events'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/autoscale_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        availabilityChanged
      ]
      advancedFilters: [
        {
          operatorType: 'StringBeginsWith'
          key: 'subject'
          values: vmPrefixes
        }
      ]
    }
    retryPolicy: retry
  }
}

resource topic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: topicName
}

// autoscale_events: users announced by a starting failover get hosts in the target region before they arrive.
resource failoverToAutoscale 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'autoscale-failover-started'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/autoscale_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    filter: {
      includedEventTypes: [
        'Tandem.Failover.Started'
      ]
    }
    retryPolicy: retry
  }
}
