DROP TABLE webhook_dispatch_state;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
