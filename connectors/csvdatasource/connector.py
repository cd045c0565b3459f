from passerelle import Connector


class CsvDataSource(Connector):
    slug = "csvdatasource"
    title = "CSV data source"
