# fish completion for crisp, the Kubernetes container runtime.

set -l commands check config status version

complete -c crisp -f
complete -c crisp -n "not __fish_seen_subcommand_from $commands" -a check -d 'Check this node without a daemon'
complete -c crisp -n "not __fish_seen_subcommand_from $commands" -a config -d 'Print the effective configuration'
complete -c crisp -n "not __fish_seen_subcommand_from $commands" -a status -d 'Ask the running daemon how it is'
complete -c crisp -n "not __fish_seen_subcommand_from $commands" -a version -d 'Print the version'

complete -c crisp -s c -l config -r -F -d 'Configuration file'
complete -c crisp -l config-dir -x -a '(__fish_complete_directories)' -d 'Directory of drop-in .conf files'
complete -c crisp -l listen -r -F -d 'Path of the CRI unix socket'
complete -c crisp -l root -x -a '(__fish_complete_directories)' -d 'Persistent state directory'
complete -c crisp -l run-root -x -a '(__fish_complete_directories)' -d 'Runtime state directory'
complete -c crisp -l log-level -x -a 'error warning info debug' -d 'Least important messages logged'
complete -c crisp -l cgroup-driver -x -a 'cgroupfs systemd' -d 'How container cgroups are managed'
complete -c crisp -l default-runtime -x -d 'Runtime handler used when a pod names none'
complete -c crisp -l cni-config-dir -x -a '(__fish_complete_directories)' -d 'Directory of CNI network configurations'
complete -c crisp -l cni-plugin-dir -x -a '(__fish_complete_directories)' -d 'Directory searched for CNI plugins (repeatable)'
complete -c crisp -l streaming-address -x -d 'IP address of the streaming server'
complete -c crisp -l streaming-port -x -d 'Port of the streaming server (0: any free port)'
complete -c crisp -l json -d 'check, status: print the report as JSON'
complete -c crisp -s h -l help -d 'Show help'
