"""ChtProject: one county's CHT Core on Kubernetes, from native resources, its data kept safe.

Creates, in the namespace named after the county:
- Namespace (retained when the county leaves config), ResourceQuota and LimitRange from the budget,
  NetworkPolicies (same-namespace traffic only; the API also from traefik).
- Secret `cht-couchdb-credentials`: user, password, secret, uuid and COUCH_URL, generated once
  (pulumi-random, URL-safe) or brought from `migratedCredentials`; retained on delete.
- CouchDB: 1 node or a 3-node cluster (`cht-couchdb[-N]`, Recreate), `couchdb-servers-configmap`,
  Services `couchdb[-N]` (5984, 4369, 9100), one PVC per node (protected, retained, expanded in place);
  in 5.x the `cht-couchdb-nouveau` sidecar and Services `nouveau[-N]`. A migrated county binds its
  existing volumes through static PersistentVolumes (Retain).
- haproxy, healthcheck, api and sentinel Deployments and Services, with Medic's container names.
- With `upgrades: admin-app` (4.x): Medic's upgrade service, its ServiceAccount, Role and RoleBinding,
  and the CHT containers ignored after creation so an upgrade done in the app is never reverted.
- Ingress (traefik) for the county's host to api:5988 with TLS, a buffering Middleware (32M bodies)
  and a ServersTransport (3600 s to the API).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi import Input, Output, ResourceOptions

from config import names
from config.model import County, HostPathVolume

from . import render

# pulumi up does not wait for CHT workloads to become ready: API migrations and view indexing can take
# hours, clustered nodes restart until node 1 is up, and a WaitForFirstConsumer PVC binds only once its
# pod is scheduled. Readiness is watched with kubectl (see the README), not by failing the deployment.
_SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


class ChtProject(pulumi.ComponentResource):
    """One county's CHT Core."""

    url: Output[str]
    """https://<host> of the county."""
    namespace: Output[str]
    """The county's namespace (its name)."""
    version: str
    """The CHT version in config (with upgrades: admin-app, the app may since have upgraded)."""
    credentials_secret: Output[str]
    """Name of the Secret that holds the CouchDB credentials and COUCH_URL."""

    def __init__(
        self,
        name: str,
        county: County,
        storage_class: Input[str],
        credentials: Output[dict] | None = None,
        opts: ResourceOptions | None = None,
    ):
        super().__init__("cht-hosting:cht:ChtProject", name, None, opts)
        settings = county.settings
        if settings.migration is not None and credentials is None:
            raise pulumi.RunError(
                f"county {county.name}: a migrated county needs its existing credentials; set "
                f"cht-hosting:migratedCredentials.{county.name} (user, password, secret, uuid)"
            )
        self._name, self._county, self._settings = name, county, settings
        self._ns = names.namespace(county.name)
        ResourceOptions(parent=self)

        self.ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": self._ns, "labels": {names.COUNTY_LABEL: county.name}},
            # Deleting a namespace deletes the PVCs and the credentials in it.
            opts=ResourceOptions(parent=self, retain_on_delete=True),
        )
        in_ns = ResourceOptions(parent=self, depends_on=[self.ns])
        self._in_ns = in_ns

        self._quota = self._guardrails(name, in_ns)
        self.secret = self._credentials(name, credentials, in_ns)
        couch_services, _couch_deployments = self._couchdb(name, storage_class, in_ns)
        self._stateless(name, in_ns, couch_services)
        if render.upgrade_service_enabled(settings):
            self._upgrade_service(name, in_ns)
        self._ingress(name, in_ns)

        self.url = Output.from_input(f"https://{county.host}")
        self.namespace = self.ns.metadata.name
        self.version = settings.version
        self.credentials_secret = Output.from_input(render.CREDENTIALS_SECRET)
        # Marks the component complete and shows these outputs in the CLI.
        self.register_outputs(
            {"url": self.url, "namespace": self.namespace, "version": self.version, "credentialsSecret": self.credentials_secret}
        )

    # --- helpers -----------------------------------------------------------------------------------------

    def _meta(self, name: str, service: str | None = None, **extra: Any) -> dict:
        meta: dict[str, Any] = {"name": name, "namespace": self._ns, **extra}
        meta["labels"] = render.labels(self._county.name, service or name)
        return meta

    # --- isolation ----------------------------------------------------------------------------------------

    def _guardrails(self, name: str, opts: ResourceOptions) -> k8s.core.v1.ResourceQuota:
        settings = self._settings
        quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota", metadata=self._meta("cht-budget"), spec={"hard": render.quota(settings)}, opts=opts
        )
        k8s.core.v1.LimitRange(
            f"{name}-limits", metadata=self._meta("cht-defaults"), spec={"limits": render.limit_range()}, opts=opts
        )
        for policy, spec in render.network_policies().items():
            k8s.networking.v1.NetworkPolicy(f"{name}-netpol-{policy}", metadata=self._meta(policy), spec=spec, opts=opts)
        return quota

    # --- credentials -----------------------------------------------------------------------------------------

    def _credentials(self, name: str, migrated: Output[dict] | None, opts: ResourceOptions) -> k8s.core.v1.Secret:
        county = self._county.name
        if migrated is not None:

            def pick(creds: dict | None) -> dict:
                if not creds:
                    raise pulumi.RunError(
                        f"county {county}: no entry in cht-hosting:migratedCredentials; a migrated county must keep "
                        "its CouchDB user, password, secret and uuid"
                    )
                return creds

            creds = Output.secret(migrated).apply(pick)
            user, password = creds["user"], creds["password"]
            secret, uuid = creds["secret"], creds["uuid"]
        else:
            # Generated once: nothing here depends on version or anything else that changes.
            # Letters and digits only: safe in URLs, shell scripts and ini files (cht-core#8599, #9129).
            password = random.RandomPassword(
                f"{name}-couchdb-password", length=32, special=False, opts=ResourceOptions(parent=self)
            ).result
            secret = random.RandomPassword(
                f"{name}-couchdb-secret", length=32, special=False, opts=ResourceOptions(parent=self)
            ).result
            uuid = random.RandomUuid(f"{name}-couchdb-uuid", opts=ResourceOptions(parent=self)).result
            user = Output.from_input(self._settings.couchdb_user)
        data = Output.secret(
            Output.all(user, password, secret, uuid).apply(
                lambda v: {
                    "COUCHDB_USER": v[0],
                    "COUCHDB_PASSWORD": v[1],
                    "COUCHDB_SECRET": v[2],
                    "COUCHDB_UUID": v[3],
                    "COUCH_URL": render.couch_url(v[0], v[1], self._ns),
                }
            )
        )
        return k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=self._meta(render.CREDENTIALS_SECRET, "couchdb"),
            type="Opaque",
            string_data=data,
            # CouchDB keeps the values it first saw in local.d; a new Secret would lock API out.
            opts=ResourceOptions.merge(opts, ResourceOptions(retain_on_delete=True)),
        )

    # --- CouchDB ------------------------------------------------------------------------------------------

    def _volume(self, name: str, node: render.CouchNode, storage_class: Input[str], opts: ResourceOptions):
        settings = self._settings
        size = f"{settings.couchdb_storage_gb}Gi"
        keep = ResourceOptions(protect=True, retain_on_delete=True)
        spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
        # The quota caps requests.storage: a larger volume must wait until the quota has grown with it.
        depends: list[pulumi.Resource] = [self._quota]
        if settings.migration is None:
            spec["storageClassName"] = storage_class
        else:
            source = settings.migration.volumes[(node.number or 1) - 1]
            pv_name = names.static_pv_name(self._county.name, node.number or 1)
            pv_spec: dict[str, Any] = {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "volumeMode": "Filesystem",
                "claimRef": {"namespace": self._ns, "name": node.claim},
            }
            if isinstance(source, HostPathVolume):
                pv_spec["hostPath"] = {"path": source.host_path, "type": "Directory"}
                pv_spec["nodeAffinity"] = {
                    "required": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [source.node]}]}
                        ]
                    }
                }
            else:
                pv_spec["csi"] = {"driver": names.CSI_DRIVER, "volumeHandle": source.volume_handle, "fsType": "ext4"}
            pv = k8s.core.v1.PersistentVolume(
                f"{name}-{node.service}-pv",
                metadata={"name": pv_name, "labels": render.labels(self._county.name, node.service)},
                spec=pv_spec,
                opts=ResourceOptions.merge(ResourceOptions(parent=self), keep),
            )
            spec["storageClassName"] = ""
            spec["volumeName"] = pv_name
            depends.append(pv)
        return k8s.core.v1.PersistentVolumeClaim(
            f"{name}-{node.service}-pvc",
            metadata=self._meta(node.claim, node.service, annotations=dict(_SKIP_AWAIT)),
            spec=spec,
            # A StorageClass rename must not replace a bound claim; size changes expand in place.
            opts=ResourceOptions.merge(
                opts,
                ResourceOptions.merge(keep, ResourceOptions(ignore_changes=["spec.storageClassName"], depends_on=depends)),
            ),
        )

    def _couchdb(self, name: str, storage_class: Input[str], opts: ResourceOptions):
        settings = self._settings
        five = render.major(settings.version) >= 5
        configmap = k8s.core.v1.ConfigMap(
            f"{name}-couchdb-servers",
            metadata=self._meta(render.SERVERS_CONFIGMAP, "couchdb"),
            data=render.servers_configmap(settings, self._ns),
            opts=opts,
        )
        split = render.resource_split(settings)
        services, deployments = [], []
        for node in render.couch_nodes(settings):
            ports = [
                {"name": f"couchdb{node.number or ''}-service", "port": render.COUCHDB_PORT, "targetPort": render.COUCHDB_PORT},
                {"name": "epmd", "port": 4369, "targetPort": 4369},
                {"name": "erlang", "port": 9100, "targetPort": 9100},
            ]
            services.append(
                k8s.core.v1.Service(
                    f"{name}-{node.service}-service",
                    metadata=self._meta(node.service),
                    spec={"selector": {"cht.service": node.service}, "ports": [dict(p, protocol="TCP") for p in ports]},
                    opts=opts,
                )
            )
            if five:
                k8s.core.v1.Service(
                    f"{name}-{node.nouveau_service}-service",
                    metadata=self._meta(node.nouveau_service),
                    spec={
                        "selector": {"cht.service": node.service},
                        "ports": [{"name": "nouveau-service", "port": render.NOUVEAU_PORT, "targetPort": render.NOUVEAU_PORT, "protocol": "TCP"}],
                    },
                    opts=opts,
                )
            pvc = self._volume(name, node, storage_class, opts)
            volume = "couchdb-data"
            data_mount = {"name": volume, "mountPath": "/opt/couchdb/data"}
            if sub := render.data_sub_path(settings, node):
                data_mount["subPath"] = sub
            containers = [
                {
                    "name": node.container,
                    "image": render.image(settings, "couchdb"),
                    "ports": [{"containerPort": render.COUCHDB_PORT}],
                    "env": render.couchdb_env(settings, self._ns, node),
                    "resources": split[node.container].requirements(),
                    "readinessProbe": render.readiness_tcp(render.COUCHDB_PORT),
                    # local.d holds cluster-credentials.ini (admin hash, secret, uuid): it must persist.
                    "volumeMounts": [data_mount, {"name": volume, "mountPath": "/opt/couchdb/etc/local.d", "subPath": "local.d"}],
                }
            ]
            if five:
                nouveau_mount = {"name": volume, "mountPath": "/data/nouveau"}
                if sub:
                    nouveau_mount["subPath"] = sub
                containers.append(
                    {
                        "name": "cht-couchdb-nouveau",
                        "image": render.image(settings, "couchdb-nouveau"),
                        "ports": [{"containerPort": render.NOUVEAU_PORT}],
                        "resources": split[f"{node.container}/nouveau"].requirements(),
                        "volumeMounts": [nouveau_mount],
                    }
                )
            deployments.append(
                self._deployment(
                    f"{name}-{node.service}",
                    node.deployment,
                    node.service,
                    {
                        # The entrypoint chowns the volume, then drops to the couchdb user (Medic's charts).
                        "securityContext": {"runAsUser": 0, "fsGroup": 0},
                        "containers": containers,
                        "volumes": [{"name": volume, "persistentVolumeClaim": {"claimName": node.claim}}],
                    },
                    ResourceOptions.merge(opts, ResourceOptions(depends_on=[pvc, configmap, self.secret])),
                )
            )
        return services, deployments

    # --- stateless services --------------------------------------------------------------------------------

    def _deployment(self, resource_name: str, name: str, service: str, pod: dict, opts: ResourceOptions, cht: bool = True):
        ignore = render.ADMIN_APP_IGNORE if cht and render.upgrade_service_enabled(self._settings) else []
        return k8s.apps.v1.Deployment(
            f"{resource_name}-deployment",
            metadata=self._meta(name, service, annotations=dict(_SKIP_AWAIT)),
            spec={
                "replicas": 1,
                # One pod at a time: RWO volumes, and never two APIs migrating the same database.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"cht.service": service}},
                "template": {"metadata": {"labels": render.labels(self._county.name, service)}, "spec": pod},
            },
            opts=ResourceOptions.merge(opts, ResourceOptions(ignore_changes=ignore)),
        )

    def _service(self, name: str, service: str, port: int, opts: ResourceOptions, annotations: dict | None = None):
        return k8s.core.v1.Service(
            f"{self._name}-{service}-service",
            metadata=self._meta(name, service, **({"annotations": annotations} if annotations else {})),
            spec={"selector": {"cht.service": service}, "ports": [{"name": name, "port": port, "targetPort": port, "protocol": "TCP"}]},
            opts=opts,
        )

    def _container(self, name: str, svc: str, env: list[dict], port: int | None = None) -> dict:
        container: dict[str, Any] = {
            "name": name,
            "image": render.image(self._settings, svc),
            "env": env,
            "resources": render.resource_split(self._settings)[name].requirements(),
        }
        if port:
            container["ports"] = [{"containerPort": port}]
            container["readinessProbe"] = render.readiness_tcp(port)
        return container

    def _stateless(self, name: str, opts: ResourceOptions, couch_services: list) -> None:
        ns = self._ns
        after_secret = ResourceOptions.merge(opts, ResourceOptions(depends_on=[self.secret]))
        # haproxy resolves the CouchDB Service names once at start and exits if one is missing.
        after_couch = ResourceOptions.merge(opts, ResourceOptions(depends_on=[self.secret, *couch_services]))
        self._service("healthcheck", "healthcheck", render.HEALTHCHECK_PORT, opts)
        self._deployment(
            f"{name}-healthcheck", "cht-haproxy-healthcheck", "healthcheck",
            {"containers": [self._container("cht-haproxy-healthcheck", "haproxy-healthcheck", render.healthcheck_env(), render.HEALTHCHECK_PORT)]},
            after_couch,
        )
        self._service("haproxy", "haproxy", render.COUCHDB_PORT, opts)
        self._deployment(
            f"{name}-haproxy", "cht-haproxy", "haproxy",
            {"hostname": "haproxy", "containers": [self._container("cht-haproxy", "haproxy", render.haproxy_env(ns), render.COUCHDB_PORT)]},
            after_couch,
        )
        self._service("api", "api", render.API_PORT, opts, annotations=render.api_service_annotations(ns))
        self._deployment(
            f"{name}-api", "cht-api", "api",
            {"containers": [self._container("cht-api", "api", render.api_env(self._settings, ns), render.API_PORT)]},
            after_secret,
        )
        self._deployment(
            f"{name}-sentinel", "cht-sentinel", "sentinel",
            {"containers": [self._container("cht-sentinel", "sentinel", render.sentinel_env(ns))]},
            after_secret,
        )

    # --- upgrade service (4.x, upgrades: admin-app) ------------------------------------------------------

    def _upgrade_service(self, name: str, opts: ResourceOptions) -> None:
        account = k8s.core.v1.ServiceAccount(
            f"{name}-upgrade-service-account", metadata=self._meta(render.UPGRADE_SERVICE_ACCOUNT, "upgrade-service"), opts=opts
        )
        role = k8s.rbac.v1.Role(
            f"{name}-upgrade-service-role",
            metadata=self._meta("deployment-manager", "upgrade-service"),
            rules=render.upgrade_service_role_rules(),
            opts=opts,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-upgrade-service-binding",
            metadata=self._meta("deployment-manager-cht", "upgrade-service"),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployment-manager"},
            subjects=[{"kind": "ServiceAccount", "name": render.UPGRADE_SERVICE_ACCOUNT, "namespace": self._ns}],
            opts=ResourceOptions.merge(opts, ResourceOptions(depends_on=[account, role])),
        )
        self._service("upgrade-service", "upgrade-service", render.UPGRADE_SERVICE_PORT, opts)
        container = {
            "name": "upgrade-service",
            "image": self._settings.upgrade_service_image,
            "ports": [{"containerPort": render.UPGRADE_SERVICE_PORT}],
            "env": [
                {"name": "CHT_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "CHT_DEPLOYMENT_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['cht.service']"}}},
                {"name": "UPGRADE_SERVICE_PORT", "value": str(render.UPGRADE_SERVICE_PORT)},
            ],
            "resources": render.resource_split(self._settings)["upgrade-service"].requirements(),
            "readinessProbe": render.readiness_tcp(render.UPGRADE_SERVICE_PORT),
        }
        self._deployment(
            f"{name}-upgrade-service", "upgrade-service", "upgrade-service",
            {"serviceAccountName": render.UPGRADE_SERVICE_ACCOUNT, "containers": [container]},
            ResourceOptions.merge(opts, ResourceOptions(depends_on=[binding])),
            cht=False,
        )

    # --- ingress ------------------------------------------------------------------------------------------

    def _ingress(self, name: str, opts: ResourceOptions) -> None:
        settings, ns = self._settings, self._ns
        middleware = k8s.apiextensions.CustomResource(
            f"{name}-body-size",
            api_version="traefik.io/v1alpha1",
            kind="Middleware",
            metadata=self._meta(render.BUFFERING_MIDDLEWARE, "api"),
            spec=render.buffering_middleware_spec(),
            opts=opts,
        )
        transport = k8s.apiextensions.CustomResource(
            f"{name}-api-transport",
            api_version="traefik.io/v1alpha1",
            kind="ServersTransport",
            metadata=self._meta(render.SERVERS_TRANSPORT, "api"),
            spec=render.servers_transport_spec(),
            opts=opts,
        )
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=self._meta("api-ingress", "api", annotations=render.ingress_annotations(settings, ns)),
            spec={
                "ingressClassName": "traefik",
                "tls": [{"hosts": [self._county.host], "secretName": settings.tls.secret_name}],
                "rules": [
                    {
                        "host": self._county.host,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "api", "port": {"number": render.API_PORT}}},
                                }
                            ]
                        },
                    }
                ],
            },
            opts=ResourceOptions.merge(opts, ResourceOptions(depends_on=[middleware, transport])),
        )
