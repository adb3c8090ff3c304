module github.com/opencontainers/runtime-tools

go 1.19

require (
	github.com/blang/semver/v4 v4.0.0
	github.com/google/uuid v1.3.0
	github.com/hashicorp/go-multierror v1.1.1
	github.com/mndrix/tap-go v0.0.0-20171203230836-629fa407e90b
	github.com/moby/sys/mountinfo v0.7.2
	github.com/mrunalp/fileutils v0.5.0
	github.com/opencontainers/runtime-spec v1.1.0
	github.com/opencontainers/selinux v1.9.1
	github.com/sirupsen/logrus v1.8.1
	github.com/stretchr/testify v1.3.0
	github.com/syndtr/gocapability v0.0.0-20200815063812-42c35b437635
	github.com/urfave/cli v1.19.1
	github.com/xeipuuv/gojsonschema v1.2.0
	golang.org/x/sys v0.1.0
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/hashicorp/errwrap v1.0.0 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/xeipuuv/gojsonpointer v0.0.0-20180127040702-4e3ac2762d5f // indirect
	github.com/xeipuuv/gojsonreference v0.0.0-20180127040603-bd5ef7bd5415 // indirect
	gopkg.in/yaml.v2 v2.4.0 // indirect
)
