// The built-in kinds the operator touches, described once with ResourceRef.
#pragma once

#include "k8s/api/resource_ref.h"

namespace tf::k8s::builtin {

inline const ResourceRef kNamespaces{"", "v1", "namespaces", "Namespace", false};
inline const ResourceRef kNodes{"", "v1", "nodes", "Node", false};
inline const ResourceRef kPods{"", "v1", "pods", "Pod", true};
inline const ResourceRef kServices{"", "v1", "services", "Service", true};
inline const ResourceRef kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};
inline const ResourceRef kSecrets{"", "v1", "secrets", "Secret", true};
inline const ResourceRef kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
inline const ResourceRef kEvents{"", "v1", "events", "Event", true};
inline const ResourceRef kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
inline const ResourceRef kDeployments{"apps", "v1", "deployments", "Deployment", true};
inline const ResourceRef kDaemonSets{"apps", "v1", "daemonsets", "DaemonSet", true};
inline const ResourceRef kReplicaSets{"apps", "v1", "replicasets", "ReplicaSet", true};
inline const ResourceRef kJobs{"batch", "v1", "jobs", "Job", true};
inline const ResourceRef kPriorityClasses{"scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", false};
inline const ResourceRef kMutatingWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                                        "mutatingwebhookconfigurations",
                                                        "MutatingWebhookConfiguration", false};
inline const ResourceRef kTokenReviews{"authentication.k8s.io", "v1", "tokenreviews", "TokenReview", false};
inline const ResourceRef kCustomResourceDefinitions{"apiextensions.k8s.io", "v1",
                                                    "customresourcedefinitions",
                                                    "CustomResourceDefinition", false};

}  // namespace tf::k8s::builtin
