#!/bin/sh
# Builds the broker's password file from the operator's device entries (./passwords, made with
# `mosquitto_passwd`) and the Storekeeper subscriber's password, then runs the broker.
set -eu
: "${MQTT_PASSWORD:?set MQTT_PASSWORD in deploy/.env}"
umask 077
if [ -f /mosquitto/config/passwords ]; then
  grep -v '^storekeeper:' /mosquitto/config/passwords > /mosquitto/data/passwords || true
else
  : > /mosquitto/data/passwords
fi
mosquitto_passwd -b /mosquitto/data/passwords storekeeper "$MQTT_PASSWORD"
chown mosquitto:mosquitto /mosquitto/data/passwords 2>/dev/null || true
exec mosquitto -c /mosquitto/config/mosquitto.conf
