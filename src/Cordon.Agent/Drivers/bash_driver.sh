# Cordon code-context driver for Bash. The agent starts it with the context's channel on fd 3:
#   agent -> driver: the code of one run, ended by a NUL byte   (interrupts arrive as SIGINT)
#   driver -> agent: {"type":"ready"} once, then {"type":"end",...} after each run.
# The run's output is the shell's own stdout and stderr; after each run the driver writes the marker
# given as $1 to both, so the agent knows it has every byte of the run before it reports the end.
__cordon_marker=$1
shift
trap 'return 130 2>/dev/null' INT
printf '{"type":"ready","kernel":null,"language":"bash","interrupt":"group"}\n' >&3
__cordon_count=0
while IFS= read -r -d '' __cordon_code <&3; do
  __cordon_count=$((__cordon_count + 1))
  . /dev/fd/4 4<<<"$__cordon_code" 3>&-
  __cordon_status=$?
  printf '%s' "$__cordon_marker"
  printf '%s' "$__cordon_marker" >&2
  if [ "$__cordon_status" -eq 0 ]; then
    printf '{"type":"end","status":"ok","executionCount":%d}\n' "$__cordon_count" >&3
  elif [ "$__cordon_status" -eq 130 ]; then
    printf '{"type":"end","status":"interrupted","executionCount":%d,"exitCode":130}\n' "$__cordon_count" >&3
  else
    printf '{"type":"error","name":"ExitStatus","value":"the last command exited with status %d","traceback":[]}\n' "$__cordon_status" >&3
    printf '{"type":"end","status":"error","executionCount":%d,"exitCode":%d}\n' "$__cordon_count" "$__cordon_status" >&3
  fi
done
