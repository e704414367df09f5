"""ChtProject: one county's CHT Core on Kubernetes, from native resources, its data kept safe.

Read top to bottom, `__init__` is the county's lifecycle; every object comes whole from `render.py`:
1. The namespace (retained when the county leaves config; Pod Security baseline enforced, restricted
   warned and audited), its ResourceQuota (budget + headroom), LimitRange and NetworkPolicies (in from its
   own pods and traefik; out to DNS, its own pods, and for API and Sentinel the outside world but never
   the nodes, the Kubernetes API or vCenter).
2. Secret `cht-couchdb-credentials`: user, password, secret, uuid and COUCH_URL, generated once
   (pulumi-random, URL-safe) or brought from `migratedCredentials`; retained on delete.
3. CouchDB, node by node: each node's volume (PVC, protected, retained, expanded in place; a migrated
   county's existing volume through a static PersistentVolume), Service, Deployment and in 5.x the
   nouveau Service of the node that runs it. A clustered county's nodes on distinct agents, evicted one
   at a time (PodDisruptionBudget).
4. healthcheck, haproxy, api and sentinel, with Medic's container names (the healthcheck in the haproxy pod
   unless the upgrade service runs: render.healthcheck_beside_haproxy).
5. With `upgrades: admin-app` (4.x): Medic's upgrade service, its ServiceAccount, Role and RoleBinding,
   and the CHT containers ignored after creation so an upgrade done in the app is never reverted; an
   admission policy refuses the upgrade service's 5.x images (5.x needs nouveau, which only config adds).
6. The way in: an Ingress (traefik) for the county's host to api:5988 with TLS; the API Service names the
   platform's one ServersTransport (3600 s to the API; components/edge).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi import Input, Output, ResourceOptions

from config import names, sizing
from config.egress import ClusterAccess
from config.model import County

from . import render

# Object keys that are not constructor arguments of the typed resources, and the camelCase top-level keys
# the constructors take in snake_case.
_ARGS = {"metadata": "metadata", "spec": "spec", "data": "data", "stringData": "string_data", "type": "type",
         "rules": "rules", "roleRef": "role_ref", "subjects": "subjects"}


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
    escrow: Output[dict]
    """The county's CouchDB admin credentials (user, password, secret, uuid); a secret, for the stack output
    `escrow` (docs/runbooks/escrow.md)."""

    def __init__(
        self,
        name: str,
        county: County,
        storage_class: Input[str],
        access: ClusterAccess,
        credentials: Output[dict] | None = None,
        ingress_after: list[pulumi.Resource] | None = None,
        app_may_have_upgraded: bool = True,
        opts: ResourceOptions | None = None,
    ):
        """`access`: where county pods may not connect (config.egress); `credentials`: a migrated county's
        {user, password, secret, uuid} (secret); `ingress_after`: what the API Service and Ingress wait on (the
        platform's ServersTransport they name); `app_may_have_upgraded` (config.deployed): False when the last
        update ran the county with `upgrades: config`, so a switch to admin-app applies the containers as rendered
        once (the healthcheck leaves the haproxy pod) before they are left to the app."""
        super().__init__("cht-hosting:cht:ChtProject", name, None, opts)
        settings = county.settings
        if settings.migration is not None and credentials is None:
            raise pulumi.RunError(
                f"county {county.name}: a migrated county needs its existing credentials; set "
                f"cht-hosting:migratedCredentials.{county.name} (user, password, secret, uuid)"
            )
        self._name, self._county, self._settings = name, county, settings
        self._ns = names.namespace(county.name)
        self._ingress_after = list(ingress_after or [])
        self._app_may_have_upgraded = app_may_have_upgraded

        # 1. The namespace and its guardrails. Deleting a namespace deletes the PVCs and credentials in it.
        self.ns = self._create(
            k8s.core.v1.Namespace, "namespace", render.namespace(county.name, settings), ResourceOptions(retain_on_delete=True), in_ns=False
        )
        self._in_ns = ResourceOptions(parent=self, depends_on=[self.ns])
        self._quota = self._create(k8s.core.v1.ResourceQuota, "quota", render.resource_quota(settings, county.name))
        self._create(k8s.core.v1.LimitRange, "limits", render.limit_range(county.name))
        for policy in render.network_policies(settings, county.name, access):
            self._create(k8s.networking.v1.NetworkPolicy, f"netpol-{policy['metadata']['name']}", policy)

        # 2. Credentials, then 3. CouchDB node by node, then 4. the services that talk to it.
        self.secret = self._credentials(credentials)
        couch_services = self._couchdb(storage_class)
        self._stateless(couch_services)
        # 5. Medic's upgrade service (4.x, upgrades: admin-app).
        if sizing.has_upgrade_service(settings):
            self._upgrade_service()
        # 6. The way in (traefik's timeouts to the API: the platform's ServersTransport, names.API_TRANSPORT).
        self._create(
            k8s.networking.v1.Ingress, "ingress", render.ingress(settings, county.name, county.host),
            ResourceOptions(depends_on=self._ingress_after),
        )

        self.url = Output.from_input(county.url)
        self.namespace = self.ns.metadata.name
        self.version = settings.version
        self.credentials_secret = Output.from_input(render.CREDENTIALS_SECRET)
        # Marks the component complete and shows these outputs in the CLI.
        self.register_outputs(
            {"url": self.url, "namespace": self.namespace, "version": self.version, "credentialsSecret": self.credentials_secret}
        )

    def _create(self, cls: type, role: str, obj: dict, extra: ResourceOptions | None = None, in_ns: bool = True):
        """Registers a rendered object as `<county>-<role>`, inside the namespace unless it is the namespace."""
        base = self._in_ns if in_ns else ResourceOptions(parent=self)
        opts = ResourceOptions.merge(base, extra) if extra else base
        if cls is k8s.apiextensions.CustomResource:
            return cls(f"{self._name}-{role}", api_version=obj["apiVersion"], kind=obj["kind"],
                       metadata=obj["metadata"], spec=obj["spec"], opts=opts)
        return cls(f"{self._name}-{role}", **{_ARGS[k]: v for k, v in obj.items() if k in _ARGS}, opts=opts)

    # --- 2. credentials ------------------------------------------------------------------------------------

    def _credentials(self, migrated: Output[dict] | None) -> k8s.core.v1.Secret:
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
            user, password, secret, uuid = creds["user"], creds["password"], creds["secret"], creds["uuid"]
        else:
            # Generated once: nothing here depends on version or anything else that changes.
            # Letters and digits only: safe in URLs, shell scripts and ini files (cht-core#8599, #9129).
            mine = ResourceOptions(parent=self)
            password = random.RandomPassword(f"{self._name}-couchdb-password", length=32, special=False, opts=mine).result
            secret = random.RandomPassword(f"{self._name}-couchdb-secret", length=32, special=False, opts=mine).result
            uuid = random.RandomUuid(f"{self._name}-couchdb-uuid", opts=mine).result
            user = Output.from_input(self._settings.couchdb_user)
        # One Output of the four values serves the escrow and the Secret.
        self.escrow = Output.secret(Output.all(user=user, password=password, secret=secret, uuid=uuid))
        data = self.escrow.apply(lambda v: render.credentials_data(v["user"], v["password"], v["secret"], v["uuid"], self._ns))
        # CouchDB keeps the values it first saw in local.d; a new Secret would lock the API out.
        return self._create(k8s.core.v1.Secret, "credentials", render.credentials_secret(county, data), ResourceOptions(retain_on_delete=True))

    # --- 3. CouchDB, node by node ------------------------------------------------------------------------------

    def _couchdb(self, storage_class: Input[str]) -> list[pulumi.Resource]:
        settings, county = self._settings, self._county.name
        after: list[pulumi.Resource] = [self.secret]
        if configmap := render.servers_configmap_object(settings, county):
            after.append(self._create(k8s.core.v1.ConfigMap, "couchdb-servers", configmap))
        services = []
        for node in render.couch_nodes(settings):
            services.append(self._create(k8s.core.v1.Service, f"{node.service}-service", render.couchdb_service(county, node)))
            if node.nouveau_service:
                self._create(k8s.core.v1.Service, f"{node.nouveau_service}-service", render.nouveau_service(county, node))
            volume = self._volume(node, storage_class)
            self._create(
                k8s.apps.v1.Deployment, f"{node.service}-deployment", render.couchdb_deployment(settings, county, node),
                self._deployment_options([volume, *after]),
            )
        if budget := render.couchdb_disruption_budget(settings, county):
            self._create(k8s.policy.v1.PodDisruptionBudget, "couchdb-disruption-budget", budget)
        return services

    def _volume(self, node: render.CouchNode, storage_class: Input[str]) -> k8s.core.v1.PersistentVolumeClaim:
        keep = ResourceOptions(protect=True, retain_on_delete=True)
        # The quota caps requests.storage: a larger volume must wait until the quota has grown with it.
        after: list[pulumi.Resource] = [self._quota]
        if self._settings.migration is not None:
            after.append(
                self._create(
                    k8s.core.v1.PersistentVolume, f"{node.service}-pv",
                    render.static_volume(self._settings, self._county.name, node), keep, in_ns=False,
                )
            )
        # A StorageClass rename must not replace a bound claim; size changes expand in place. A restored
        # claim (restore-county.sh) is bound to a new volume on the county's class even when the county was
        # migrated (Velero provisions file-system-backed volumes anew), so neither the class nor the volume
        # name it is bound to is ever a reason to replace it.
        ignore = ["spec.storageClassName", "spec.volumeName"]
        return self._create(
            k8s.core.v1.PersistentVolumeClaim, f"{node.service}-pvc",
            render.claim(self._settings, self._county.name, node, storage_class),
            ResourceOptions.merge(keep, ResourceOptions(ignore_changes=ignore, depends_on=after)),
        )

    def _deployment_options(self, after: list[pulumi.Resource], cht: bool = True) -> ResourceOptions:
        frozen = cht and sizing.has_upgrade_service(self._settings) and self._app_may_have_upgraded
        ignore = render.ADMIN_APP_IGNORE if frozen else []
        return ResourceOptions(depends_on=after, ignore_changes=ignore)

    # --- 4. the stateless services ---------------------------------------------------------------------------

    def _stateless(self, couch_services: list[pulumi.Resource]) -> None:
        for svc in render.stateless_services(self._settings, self._county.name, self._county.host):
            if svc.service_object:
                # The API Service names the platform's ServersTransport: it waits for it.
                after_transport = ResourceOptions(depends_on=self._ingress_after) if svc.service == "api" else None
                self._create(k8s.core.v1.Service, f"{svc.service}-service", svc.service_object, after_transport)
            # haproxy and healthcheck resolve the CouchDB Service names once at start and exit if one is missing.
            after = [self.secret, *couch_services] if svc.service in ("haproxy", "healthcheck") else [self.secret]
            self._create(k8s.apps.v1.Deployment, f"{svc.service}-deployment", svc.deployment, self._deployment_options(after))

    # --- 5. upgrade service (4.x, upgrades: admin-app) ---------------------------------------------------------

    def _upgrade_service(self) -> None:
        objects: dict[str, Any] = render.upgrade_service_objects(self._settings, self._county.name)
        account = self._create(k8s.core.v1.ServiceAccount, "upgrade-service-account", objects["account"])
        role = self._create(k8s.rbac.v1.Role, "upgrade-service-role", objects["role"])
        binding = self._create(
            k8s.rbac.v1.RoleBinding, "upgrade-service-binding", objects["binding"], ResourceOptions(depends_on=[account, role])
        )
        # The cluster refuses the upgrade service's 5.x images (no nouveau): before the service can act.
        admission = render.admin_app_policy(self._county.name)
        policy = self._create(
            k8s.admissionregistration.v1.ValidatingAdmissionPolicy, "admin-app-policy", admission["policy"], in_ns=False
        )
        admitted = self._create(
            k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding, "admin-app-policy-binding", admission["binding"],
            ResourceOptions(depends_on=[policy]), in_ns=False,
        )
        self._create(k8s.core.v1.Service, "upgrade-service-service", objects["service"])
        self._create(
            k8s.apps.v1.Deployment, "upgrade-service-deployment", objects["deployment"],
            self._deployment_options([binding, admitted], cht=False),
        )
