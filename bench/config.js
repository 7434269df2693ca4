// Constants shared by the orchestrator, the load generator and the servers (no imports: servers stay lean).
export const APP_ID = '20110698'
export const APP_SECRET = 'bench-secret-0123456789'
export const FORM = 'application/x-www-form-urlencoded'
