package cli

// Commands lists the roles of the binary, for docs and the deployment
// checks in deploy/ (which verify that manifests only run roles that exist).
func Commands() []string {
	return []string{"serve", "engine", "api", "migrate", "loadgen", "simulate", "version", "help"}
}

// EnvNames lists every environment variable any role reads. The deployment
// checks in deploy/ fail when a manifest sets a variable not listed here, so
// a typo in a manifest cannot silently fall back to a default.
func EnvNames() []string {
	return []string{
		// The original's names.
		"KAFKA_BROKERS", "PRODUCT_EVENTS_TOPIC", "PRICE_UPDATES_TOPIC", "REDIS_ADDR",
		"API_PORT", "ADMIN_API_KEY", "API_KEY_HEADER",
		// DATABASE_URL takes the place of the original's ORACLE_DSN, which
		// is read only to say so.
		"DATABASE_URL", "ORACLE_DSN",
		// dynaprice's own.
		"DYNAPRICE_API_KEYS", "DYNAPRICE_WS_ORIGINS", "DYNAPRICE_PARTITIONS", "DYNAPRICE_REDIS_PREFIX", "DYNAPRICE_INSECURE_SHORT_KEYS",
		"DYNAPRICE_CONTROL_TOPIC", "DYNAPRICE_CONTROL_KEYS", "DYNAPRICE_AUTO_CREATE", "DYNAPRICE_BASE_FROM_EVENTS",
		"KAFKA_TLS", "KAFKA_TLS_CA", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USER", "KAFKA_SASL_PASSWORD",
		"DYNAPRICE_LOG_LEVEL", "DYNAPRICE_LOG_FORMAT", "DYNAPRICE_HISTORY_RAW", "DYNAPRICE_HISTORY_HOURLY",
	}
}
