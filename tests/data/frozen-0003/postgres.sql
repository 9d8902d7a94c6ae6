--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: public; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA public;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: components; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.components (
    id integer NOT NULL,
    name character varying(255) NOT NULL,
    version character varying(64) NOT NULL,
    version_num integer,
    spec json NOT NULL,
    archived boolean NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: components_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.components_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: components_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.components_id_seq OWNED BY public.components.id;


--
-- Name: computes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.computes (
    name character varying(64) NOT NULL,
    type character varying(32) NOT NULL,
    max_instances integer NOT NULL,
    spec json NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: data_assets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.data_assets (
    id integer NOT NULL,
    name character varying(255) NOT NULL,
    version character varying(64) NOT NULL,
    version_num integer,
    type character varying(32) NOT NULL,
    path text NOT NULL,
    spec json NOT NULL,
    archived boolean NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: data_assets_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.data_assets_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: data_assets_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.data_assets_id_seq OWNED BY public.data_assets.id;


--
-- Name: datastores; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.datastores (
    name character varying(255) NOT NULL,
    type character varying(64) NOT NULL,
    spec json NOT NULL,
    is_default boolean NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: environments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.environments (
    id integer NOT NULL,
    name character varying(255) NOT NULL,
    version character varying(64) NOT NULL,
    version_num integer,
    spec_hash character varying(64) NOT NULL,
    spec json NOT NULL,
    archived boolean NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: environments_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.environments_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: environments_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.environments_id_seq OWNED BY public.environments.id;


--
-- Name: jobs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.jobs (
    seq integer NOT NULL,
    name character varying(255) NOT NULL,
    type character varying(32) NOT NULL,
    status character varying(32) NOT NULL,
    experiment_name character varying(255) NOT NULL,
    display_name character varying(255),
    compute character varying(64) NOT NULL,
    parent_name character varying(255),
    spec json NOT NULL,
    runtime json NOT NULL,
    status_history json NOT NULL,
    created_at timestamp with time zone NOT NULL,
    start_time timestamp with time zone,
    end_time timestamp with time zone,
    exit_code integer,
    error text,
    archived boolean NOT NULL
);


--
-- Name: jobs_seq_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.jobs_seq_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: jobs_seq_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.jobs_seq_seq OWNED BY public.jobs.seq;


--
-- Name: online_deployments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.online_deployments (
    id integer NOT NULL,
    endpoint_name character varying(64) NOT NULL,
    name character varying(64) NOT NULL,
    provisioning_state character varying(32) NOT NULL,
    spec json NOT NULL,
    runtime json NOT NULL,
    error text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: online_deployments_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.online_deployments_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: online_deployments_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.online_deployments_id_seq OWNED BY public.online_deployments.id;


--
-- Name: online_endpoints; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.online_endpoints (
    name character varying(64) NOT NULL,
    provisioning_state character varying(32) NOT NULL,
    spec json NOT NULL,
    auth json NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: pipeline_step_cache; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.pipeline_step_cache (
    id integer NOT NULL,
    reuse_key character varying(64) NOT NULL,
    identity character varying(512) NOT NULL,
    job_name character varying(255) NOT NULL,
    fingerprint json NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: pipeline_step_cache_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.pipeline_step_cache_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: pipeline_step_cache_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.pipeline_step_cache_id_seq OWNED BY public.pipeline_step_cache.id;


--
-- Name: schedules; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schedules (
    name character varying(255) NOT NULL,
    spec json NOT NULL,
    enabled boolean NOT NULL,
    state json NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: workspace_meta; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.workspace_meta (
    key character varying(128) NOT NULL,
    value text NOT NULL
);


--
-- Name: components id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.components ALTER COLUMN id SET DEFAULT nextval('public.components_id_seq'::regclass);


--
-- Name: data_assets id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.data_assets ALTER COLUMN id SET DEFAULT nextval('public.data_assets_id_seq'::regclass);


--
-- Name: environments id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.environments ALTER COLUMN id SET DEFAULT nextval('public.environments_id_seq'::regclass);


--
-- Name: jobs seq; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs ALTER COLUMN seq SET DEFAULT nextval('public.jobs_seq_seq'::regclass);


--
-- Name: online_deployments id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.online_deployments ALTER COLUMN id SET DEFAULT nextval('public.online_deployments_id_seq'::regclass);


--
-- Name: pipeline_step_cache id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pipeline_step_cache ALTER COLUMN id SET DEFAULT nextval('public.pipeline_step_cache_id_seq'::regclass);


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.alembic_version VALUES ('0003');


--
-- Data for Name: components; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.components VALUES (1, 'frozen_step', '1', 1, '{"tags": {}, "properties": {}, "is_deterministic": true, "inputs": {"n": {"type": "integer", "default": 1}}, "outputs": {}, "type": "command", "command": "echo ${{inputs.n}}", "environment": "azureml:AzureML-sklearn-1.5@latest", "additional_includes": []}', false, '2026-12-06 14:21:20.257857+00');


--
-- Data for Name: computes; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.computes VALUES ('local', 'local', 2, '{"description": "the machine the server runs on; slots = CPU count", "min_instances": 0, "size": "local"}', '2026-12-06 14:21:20.063946+00');


--
-- Data for Name: data_assets; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.data_assets VALUES (1, 'iris', '1', 1, 'uri_file', 'azureml://datastores/workspaceblobstore/paths/frozen/iris.csv', '{"description": "frozen data", "tags": {"k": "v"}, "properties": {}, "type": "uri_file", "path": "azureml://datastores/workspaceblobstore/paths/frozen/iris.csv"}', false, '2026-12-06 14:21:20.077148+00');
INSERT INTO public.data_assets VALUES (2, 'iris', '2', 2, 'uri_folder', 'azureml://datastores/workspaceblobstore/paths/frozen/', '{"tags": {}, "properties": {}, "type": "uri_folder", "path": "azureml://datastores/workspaceblobstore/paths/frozen/"}', false, '2026-12-06 14:21:20.085474+00');


--
-- Data for Name: datastores; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.datastores VALUES ('workspaceblobstore', 'local', '{"description": "default datastore: a folder of the workspace", "path": "datastores/workspaceblobstore"}', true, '2026-12-06 14:21:20.051276+00');
INSERT INTO public.datastores VALUES ('archive', 'azure_blob', '{"description": "cloud datastore kept as metadata", "tags": {}, "account_name": "frozenacct", "container_name": "data", "credentials": {"account_key": "frozen account key: AK-0003!"}}', false, '2026-12-06 14:21:20.069448+00');


--
-- Data for Name: environments; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.environments VALUES (1, 'frozen-env', '3', 3, '866cd764af5632ae153e8f96c2c875472fe4353331da109000dfd60514bf01ff', '{"image": "python:3.11-slim", "conda_file": {"dependencies": ["python=3.11", {"pip": ["pyyaml"]}]}}', false, '2026-12-06 14:21:20.252928+00');


--
-- Data for Name: jobs; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.jobs VALUES (4, 'frozen_pipeline-step', 'command', 'Canceled', 'frozen', 'step', 'local', 'frozen_pipeline', '{"name": "frozen_pipeline-step", "display_name": "step", "experiment_name": "frozen", "tags": {"openaml.pipeline": "frozen_pipeline", "openaml.node": "step"}, "properties": {"azureml.isreused": "false", "openaml.reason": "ran: no earlier successful run of this step", "openaml.pipeline_node": "step"}, "compute": "local", "parent_job_name": "frozen_pipeline", "archived": false, "type": "command", "command": "echo ${{inputs.n}}", "environment": "azureml:AzureML-sklearn-1.5@latest", "environment_variables": {}, "inputs": {"n": {"type": "integer", "value": 2}}, "outputs": {}}', '{"inputs": {"n": {"type": "integer", "value": 2}}, "outputs": {}, "code_dir": null, "environment": {"curated": "AzureML-sklearn-1.5", "ref": "azureml:AzureML-sklearn-1.5@latest", "kind": "base", "pip": [], "python": null, "image": null, "spec_hash": "9896945e8f83721b1c26c708b365c39643a674a7b16d143e14ab0b7f45256dd4", "warnings": [], "constraints": [], "source": "AzureML-sklearn-1.5 (curated)"}, "timeout": null, "experiment_id": "1", "artifact_uri": "mlflow-artifacts:/1/frozen_pipeline-step/artifacts"}', '[{"status": "NotStarted", "time": "2026-12-06T14:21:20.458304+00:00"}, {"status": "Queued", "time": "2026-12-06T14:21:20.461265+00:00"}, {"status": "Canceled", "time": "2026-12-06T14:21:20.531346+00:00"}]', '2026-12-06 14:21:20.458304+00', NULL, NULL, NULL, NULL, false);
INSERT INTO public.jobs VALUES (1, 'frozen_command', 'command', 'Completed', 'frozen', 'frozen command', 'local', NULL, '{"name": "frozen_command", "display_name": "frozen command", "experiment_name": "frozen", "tags": {"team": "a"}, "properties": {}, "archived": false, "type": "command", "command": "echo hi", "environment": "azureml:AzureML-sklearn-1.5@latest", "environment_variables": {}, "inputs": {}, "outputs": {}, "compute": "local"}', '{"inputs": {}, "outputs": {}, "code_dir": null, "environment": {"curated": "AzureML-sklearn-1.5", "ref": "azureml:AzureML-sklearn-1.5@latest", "kind": "base", "pip": [], "python": null, "image": null, "spec_hash": "9896945e8f83721b1c26c708b365c39643a674a7b16d143e14ab0b7f45256dd4", "warnings": [], "constraints": [], "source": "AzureML-sklearn-1.5 (curated)"}, "timeout": null, "experiment_id": "1", "artifact_uri": "mlflow-artifacts:/1/frozen_command/artifacts"}', '[{"status": "NotStarted", "time": "2026-12-06T14:21:20.285638+00:00"}, {"status": "Queued", "time": "2026-12-06T14:21:20.293556+00:00"}, {"status": "Completed", "time": "2026-12-06T14:21:20.507404+00:00"}]', '2026-12-06 14:21:20.285638+00', NULL, NULL, NULL, NULL, false);
INSERT INTO public.jobs VALUES (2, 'frozen_sweep', 'sweep', 'Failed', 'frozen', NULL, 'local', NULL, '{"name": "frozen_sweep", "experiment_name": "frozen", "tags": {}, "properties": {}, "archived": false, "type": "sweep", "trial": {"command": "echo ${{inputs.lr}}", "environment": "azureml:AzureML-sklearn-1.5@latest", "environment_variables": {}}, "inputs": {"lr": {"type": "string", "value": "${{search_space.lr}}"}}, "outputs": {}, "search_space": {"lr": {"type": "choice", "values": [0.1, 0.2]}}, "sampling_algorithm": {"type": "grid"}, "objective": {"goal": "maximize", "primary_metric": "acc"}, "limits": {"max_total_trials": 2}, "compute": "local"}', '{"experiment_id": "1", "artifact_uri": "mlflow-artifacts:/1/frozen_sweep/artifacts", "warnings": []}', '[{"status": "NotStarted", "time": "2026-12-06T14:21:20.345767+00:00"}, {"status": "Running", "time": "2026-12-06T14:21:20.349250+00:00"}, {"status": "Failed", "time": "2026-12-06T14:21:20.513686+00:00"}]', '2026-12-06 14:21:20.345767+00', '2026-12-06 14:21:20.347987+00', NULL, NULL, NULL, false);
INSERT INTO public.jobs VALUES (3, 'frozen_pipeline', 'pipeline', 'Canceled', 'frozen', NULL, '', NULL, '{"name": "frozen_pipeline", "experiment_name": "frozen", "tags": {}, "properties": {}, "archived": false, "type": "pipeline", "jobs": {"step": {"type": "command", "component": "azureml:frozen_step:1", "inputs": {"n": 2}, "outputs": {}, "environment_variables": {}, "tags": {}, "properties": {}}}, "inputs": {}, "outputs": {}, "settings": {}, "steps": {"step": {"job": "frozen_pipeline-step", "status": "Queued", "depends_on": [], "reused": false, "reason": "ran: no earlier successful run of this step"}}}', '{"plan": {"nodes": {"step": {"component": {"tags": {}, "properties": {}, "is_deterministic": true, "inputs": {"n": {"type": "integer", "default": 1}}, "outputs": {}, "type": "command", "command": "echo ${{inputs.n}}", "environment": "azureml:AzureML-sklearn-1.5@latest", "additional_includes": [], "name": "frozen_step", "version": "1", "archived": false, "created_at": "2026-12-06T14:21:20.257857+00:00", "id": "azureml:frozen_step:1", "ref": "frozen_step:1"}, "inputs": {"n": {"kind": "literal", "value": 2, "type": "integer"}}, "outputs": {}, "depends_on": [], "compute": "local", "environment_variables": {}, "limits": null, "resources": null, "distribution": null, "display_name": "step"}}, "order": ["step"], "outputs": {}}, "steps": {"step": {"job": "frozen_pipeline-step", "reuse_key": "44c7c372d424d2050446d64776448d66c24482c8f37be41c63c89e8a1e77e1bb", "identity": "frozen:step", "fingerprint": {"component": "217513b569304165072da1267168a768e9bfe7cd63c7613ee4a5d1a5cd3a5f8b", "code": "", "code_files": {}, "environment": "68c2248984aeb580c61aa11321d1ab93ebe798b3b73c66a1c129c00406ddcd4e", "params": {"n": 2}, "inputs": {}, "outputs": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}, "depends_on": [], "reused": false, "reason": "ran: no earlier successful run of this step", "status": "Queued"}}, "experiment_id": "1", "artifact_uri": "mlflow-artifacts:/1/frozen_pipeline/artifacts", "outputs": {}}', '[{"status": "NotStarted", "time": "2026-12-06T14:21:20.398160+00:00"}, {"status": "Running", "time": "2026-12-06T14:21:20.403214+00:00"}, {"status": "Canceled", "time": "2026-12-06T14:21:20.521133+00:00"}]', '2026-12-06 14:21:20.39816+00', '2026-12-06 14:21:20.401821+00', NULL, NULL, NULL, false);


--
-- Data for Name: online_deployments; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: online_endpoints; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.online_endpoints VALUES ('frozen-ep', 'Succeeded', '{"name": "frozen-ep", "description": "frozen", "tags": {"k": "v"}, "properties": {}, "auth_mode": "key", "traffic": {}, "mirror_traffic": {}}', '{"primary_key": "CYM_RYf0M0gkQQ5v2f9k9HjlK8Aik91SBrjYp-Ag1rQ", "secondary_key": "crdcYZ4b462dl2WXCSfsS-gs0FlqgvXk842s0SYkmLk", "token_secret": "gM02yBQTf_Caku5iLy0byPTxg4LOWxHZKuD5oUxxYJw"}', '2026-12-06 14:21:20.540054+00', '2026-12-06 14:21:20.540054+00');


--
-- Data for Name: pipeline_step_cache; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: schedules; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.schedules VALUES ('frozen_schedule', '{"name": "frozen_schedule", "tags": {}, "properties": {}, "trigger": {"time_zone": "UTC", "type": "cron", "expression": "0 3 * * 1"}, "create_job": {"type": "command", "command": "echo scheduled", "environment": "azureml:AzureML-sklearn-1.5@latest"}}', false, '{"anchor": "2026-12-06T14:21:20.564962+00:00", "next_fire_time": null, "fire_count": 0, "missed_fires": 0}', '2026-12-06 14:21:20.572433+00');


--
-- Data for Name: workspace_meta; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Name: components_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.components_id_seq', 1, true);


--
-- Name: data_assets_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.data_assets_id_seq', 2, true);


--
-- Name: environments_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.environments_id_seq', 1, true);


--
-- Name: jobs_seq_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.jobs_seq_seq', 4, true);


--
-- Name: online_deployments_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.online_deployments_id_seq', 1, false);


--
-- Name: pipeline_step_cache_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.pipeline_step_cache_id_seq', 1, false);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: components components_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.components
    ADD CONSTRAINT components_pkey PRIMARY KEY (id);


--
-- Name: computes computes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.computes
    ADD CONSTRAINT computes_pkey PRIMARY KEY (name);


--
-- Name: data_assets data_assets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.data_assets
    ADD CONSTRAINT data_assets_pkey PRIMARY KEY (id);


--
-- Name: datastores datastores_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.datastores
    ADD CONSTRAINT datastores_pkey PRIMARY KEY (name);


--
-- Name: environments environments_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.environments
    ADD CONSTRAINT environments_pkey PRIMARY KEY (id);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (seq);


--
-- Name: online_deployments online_deployments_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.online_deployments
    ADD CONSTRAINT online_deployments_pkey PRIMARY KEY (id);


--
-- Name: online_endpoints online_endpoints_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.online_endpoints
    ADD CONSTRAINT online_endpoints_pkey PRIMARY KEY (name);


--
-- Name: pipeline_step_cache pipeline_step_cache_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pipeline_step_cache
    ADD CONSTRAINT pipeline_step_cache_pkey PRIMARY KEY (id);


--
-- Name: schedules schedules_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (name);


--
-- Name: components uq_component_name_version; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.components
    ADD CONSTRAINT uq_component_name_version UNIQUE (name, version);


--
-- Name: data_assets uq_data_name_version; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.data_assets
    ADD CONSTRAINT uq_data_name_version UNIQUE (name, version);


--
-- Name: online_deployments uq_deployment_endpoint_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.online_deployments
    ADD CONSTRAINT uq_deployment_endpoint_name UNIQUE (endpoint_name, name);


--
-- Name: environments uq_env_name_version; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.environments
    ADD CONSTRAINT uq_env_name_version UNIQUE (name, version);


--
-- Name: workspace_meta workspace_meta_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspace_meta
    ADD CONSTRAINT workspace_meta_pkey PRIMARY KEY (key);


--
-- Name: ix_components_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_components_name ON public.components USING btree (name);


--
-- Name: ix_data_assets_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_data_assets_name ON public.data_assets USING btree (name);


--
-- Name: ix_environments_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_environments_name ON public.environments USING btree (name);


--
-- Name: ix_jobs_compute; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_compute ON public.jobs USING btree (compute);


--
-- Name: ix_jobs_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_jobs_name ON public.jobs USING btree (name);


--
-- Name: ix_jobs_parent_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_parent_name ON public.jobs USING btree (parent_name);


--
-- Name: ix_jobs_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_status ON public.jobs USING btree (status);


--
-- Name: ix_online_deployments_endpoint_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_online_deployments_endpoint_name ON public.online_deployments USING btree (endpoint_name);


--
-- Name: ix_pipeline_step_cache_identity; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_pipeline_step_cache_identity ON public.pipeline_step_cache USING btree (identity);


--
-- Name: ix_pipeline_step_cache_reuse_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_pipeline_step_cache_reuse_key ON public.pipeline_step_cache USING btree (reuse_key);


--
-- PostgreSQL database dump complete
--


