# Write what the service sees into the bind-mounted ./data, then idle until stopped.
trap 'echo "app: stopping"; exit 0' TERM INT
echo "$GREETING | $SECRET" > /data/greeting.txt
echo "app: wrote /data/greeting.txt"
while :; do sleep 1; done
