package meshtest

// HTTPService is the ServiceEntry of a bookinfo-style service, as the test meshes write
// it: <app>.default.svc.cluster.local on port 9080 (http, named "http"), inside the mesh,
// its endpoints the WorkloadEntries labelled app: <app>. It ends with a document
// separator, so that services concatenate.
func HTTPService(app string) string {
	return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ` + app + `}
spec:
  hosts: [` + app + `.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ` + app + `}}
---`
}
